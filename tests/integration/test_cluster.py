"""agentlab.cluster on a real Dask LocalCluster (worker processes) against a real limited offline server.

One cluster for the module (its start is the slow part). The tools are defined the way a notebook defines them
(in ``__main__``), so that cloudpickle ships them by value, as it does from a notebook.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, Fulfilled, Rejected
from agentlab.budget import Budget
from agentlab.errors import ConfigurationError
from agentlab.offline import LatencyModel, OfflineServer, ServerConfig, start

distributed = pytest.importorskip("distributed")
from agentlab.cluster import SharedBudget, WorkerLost, run_distributed  # noqa: E402

SCALE = 0.05  # a minute of 3 s
RPM, TPM = 240, 16_000
NOTEBOOK_TOOLS = '''
import os, signal

def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number
    """
    if a == 1000:  # the conversation "What is 1000 + 1?" kills the worker it runs on
        os.kill(os.getpid(), signal.SIGKILL)
    return a + b
'''


def notebook_tool() -> Any:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(NOTEBOOK_TOOLS, namespace)
    return namespace["add"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    before = os.environ.get("AGENTLAB_TIME_SCALE")
    os.environ["AGENTLAB_TIME_SCALE"] = str(SCALE)  # the workers and the scheduler read the same minute
    cluster = distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=":0")
    try:
        yield cluster
    finally:
        cluster.close()
        if before is None:
            os.environ.pop("AGENTLAB_TIME_SCALE")
        else:
            os.environ["AGENTLAB_TIME_SCALE"] = before


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def limited() -> Iterator[OfflineServer]:
    with start(ServerConfig(LatencyModel(time_scale=SCALE)), rpm=RPM, tpm=TPM) as server:
        yield server


def agent_for(server: OfflineServer) -> Agent:
    client = AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0)
    return Agent("calc", "Do the math with the tools.", tools=[notebook_tool()], client=client)


def prompts(n: int, offset: int = 0) -> list[str]:
    return [f"What is {i} + {i + 1}?" for i in range(offset, offset + n)]


def statuses(server: OfflineServer) -> dict[str, int]:
    with urllib.request.urlopen(server.url + "/offline/stats") as answer:
        counts: dict[str, int] = json.load(answer)["statuses"]
    return counts


def answered(outcome: Any, i: int) -> bool:
    return isinstance(outcome, Fulfilled) and str(2 * i + 1) in outcome.value.output_text


async def test_a_shared_budget_keeps_every_worker_under_the_limit(client: Any, limited: OfflineServer) -> None:
    budget = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM)
    batch = await run_distributed(agent_for(limited), prompts(60), client, budget=budget)
    assert [answered(o, i) for i, o in enumerate(batch)] == [True] * 60  # N ordered outcomes
    assert statuses(limited).get("429", 0) == 0
    books = budget.stats()
    assert books["calls"] == 120 and books["rate_limited"] == 0 and books["outstanding"] == 0
    assert batch.report.runner == "run_distributed" and batch.report.n == 60
    # Times moved onto this process's clock: every first span lies within the batch. The batch starts with its
    # earliest conversation (not always conversation 0: another worker may start one first); a worker's clock is
    # placed by one message's trip, so allow it that much.
    first = min(o.value.started_at for o in batch)
    starts = {o.value.spans[0].start for o in batch}
    assert all(-0.05 <= t - first < batch.report.wall_time + 1 for t in starts)


async def test_a_budget_per_worker_overshoots_the_limit(client: Any) -> None:
    """The failure this module exists for: a plain Budget is copied to each worker, each spends the whole limit.

    Each copy starts full (``start_full``: a key nobody else spends, it believes), so each of the 3 workers sends
    its 10 first turns at once: 30 requests against a limit of 20 a minute (of 3 s)."""
    with start(ServerConfig(LatencyModel(time_scale=SCALE)), rpm=20) as tight:
        per_worker = Budget(20, None, start_full=True)
        batch = await run_distributed(agent_for(tight), prompts(30), client, budget=per_worker)
        assert len(batch) == 30
        assert statuses(tight).get("429", 0) > 0


async def test_two_batches_share_one_budget(cluster: Any, limited: OfflineServer) -> None:
    async with distributed.Client(cluster.scheduler_address, asynchronous=True) as client:  # on the test's loop
        budget = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM)
        agent = agent_for(limited)
        first, second = await asyncio.gather(
            run_distributed(agent, prompts(40), client, budget=budget),
            run_distributed(agent, prompts(40, offset=40), client, budget=budget),
        )
        books = await budget.stats()
    assert [answered(o, i) for i, o in enumerate(first)] == [True] * 40
    assert [answered(o, i) for i, o in enumerate(second, 40)] == [True] * 40
    assert statuses(limited).get("429", 0) == 0
    assert books["calls"] == 160  # both batches spent from the one budget


async def test_a_worker_killed_mid_batch(client: Any, limited: OfflineServer) -> None:
    """SIGKILL: N ordered outcomes, the dead worker's conversations Rejected saying why; the budget lives on."""
    budget = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM)
    batch_prompts = prompts(30) + ["What is 1000 + 1?"] + prompts(30, offset=30)
    batch = await run_distributed(agent_for(limited), batch_prompts, client, budget=budget, max_per_worker=8)
    assert len(batch) == 61
    lost = [o for o in batch if isinstance(o, Rejected)]
    assert isinstance(batch[30], Rejected) and isinstance(batch[30].reason, WorkerLost)
    assert all(isinstance(o.reason, WorkerLost) and "died" in str(o.reason) for o in lost)
    assert "not run again" in str(batch[30].reason)
    assert 1 <= len(lost) <= 8  # at most what that worker held; the rest went to the others
    numbers = [*range(30), None, *range(30, 60)]
    for outcome, i in zip(batch, numbers, strict=True):
        assert isinstance(outcome, Rejected) or (i is not None and answered(outcome, i))
    assert statuses(limited).get("429", 0) == 0
    again = await run_distributed(agent_for(limited), prompts(20), client, budget=budget)  # the budget survived
    assert [answered(o, i) for i, o in enumerate(again)] == [True] * 20


async def test_bad_input_is_named_before_any_request(client: Any, limited: OfflineServer) -> None:
    agent = agent_for(limited)
    with pytest.raises(ConfigurationError, match="client must be a dask.distributed.Client"):
        await run_distributed(agent, prompts(2), "tcp://127.0.0.1:8786")  # type: ignore[arg-type]
    for bad in (0, -5, "600", float("nan")):
        with pytest.raises(ConfigurationError, match="requests_per_minute"):
            SharedBudget(client, requests_per_minute=bad, tokens_per_minute=None)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="tokens_per_minute"):
            await run_distributed(agent, prompts(2), client, tokens_per_minute=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_per_worker"):
        await run_distributed(agent, prompts(2), client, max_per_worker=0)
    with (
        distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty,
        distributed.Client(empty) as nobody,
    ):
        with pytest.raises(ConfigurationError, match="client: the Dask cluster has no workers"):
            await run_distributed(agent, prompts(2), nobody)
    assert statuses(limited) == {}  # not one request went out


async def answered_at_least(server: OfflineServer, n: int) -> None:
    """Wait until the server has answered n requests (a condition, not a fixed time)."""
    while (await asyncio.to_thread(statuses, server)).get("200", 0) < n:  # noqa: ASYNC110 (a server counter)
        await asyncio.sleep(0.02)


async def test_cancelling_a_batch_stops_its_conversations_on_the_workers(client: Any, limited: OfflineServer) -> None:
    budget = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM)
    batch = asyncio.create_task(
        run_distributed(agent_for(limited), prompts(200), client, budget=budget, max_per_worker=5)
    )
    await answered_at_least(limited, 20)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    before = statuses(limited)["200"]
    again = await run_distributed(agent_for(limited), prompts(20), client, budget=budget)
    assert [answered(o, i) for i, o in enumerate(again)] == [True] * 20
    strays = statuses(limited)["200"] - before - 40  # answers that no batch of ours still wanted
    assert strays <= 15  # at most the calls in flight when it was cancelled (3 workers x 5), not the 360 left


async def test_a_client_closed_mid_batch_gives_rejected_outcomes(cluster: Any, limited: OfflineServer) -> None:
    client = await distributed.Client(cluster.scheduler_address, asynchronous=True)
    batch = asyncio.create_task(run_distributed(agent_for(limited), prompts(200), client, tokens_per_minute=TPM))
    await answered_at_least(limited, 20)
    await client.close()
    outcomes = await batch
    assert len(outcomes) == 200
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    assert rejected and all("client was closed" in str(o.reason) for o in rejected)
    assert all(answered(o, i) for i, o in enumerate(outcomes) if isinstance(o, Fulfilled))


async def test_a_shared_budget_also_paces_a_batch_in_this_process(client: Any, limited: OfflineServer) -> None:
    """SharedBudget keeps the budget contract (call(send, input_tokens)): run_bounded here spends from it too."""
    from agentlab import run_bounded

    budget = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM)
    here = await run_bounded(agent_for(limited), prompts(10), budget=budget)
    assert [answered(o, i) for i, o in enumerate(here)] == [True] * 10
    assert budget.stats()["calls"] == 20  # the scheduler's books hold this process's calls
