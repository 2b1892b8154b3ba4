"""1000 conversations with 10% injected faults (500, 429 with Retry-After, hangs): nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from agentlab import BackendError, ConversationTimeout, Fulfilled, Rejected, run_bounded, run_settled
from agentlab.offline import FaultPlan, LatencyModel, OfflineServer, ServerConfig, start
from agentlab.results import Batch, Outcome

from .conftest import agent_for, close

N = 1000


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[OfflineServer]:
    config = ServerConfig(LatencyModel(time_scale=0.02), FaultPlan(rate=0.1, seed=11, retry_after=0.1))
    with start(config) as server:
        yield server


def prompts() -> list[str]:
    return [f"What is {i} + 7? [id={i}]" for i in range(N)]


def check_outcomes(outcomes: Batch[Outcome]) -> Counter[str]:
    """Exactly N outcomes in input order; right answers; typed errors; no id seen twice."""
    assert len(outcomes) == N
    kinds: Counter[str] = Counter()
    response_ids: list[str] = []
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Fulfilled):
            result = outcome.value
            assert result.messages[0]["content"] == f"What is {i} + 7? [id={i}]"
            assert result.output_text == f"{i} + 7 = {i + 7}."
            response_ids += [m["id"] for m in result.messages if m.get("type") == "reasoning"]
            kinds["fulfilled"] += 1
        else:
            assert isinstance(outcome, Rejected)
            assert isinstance(outcome.reason, (BackendError, ConversationTimeout)), repr(outcome.reason)
            kinds[type(outcome.reason).__name__ + describe_status(outcome.reason)] += 1
    assert len(response_ids) == len(set(response_ids)), "a response was delivered twice"
    assert [c.index for c in outcomes.report.conversations] == list(range(N))
    return kinds


def describe_status(error: BaseException) -> str:
    if isinstance(error, BackendError):
        return f"({error.status_code or 'no answer in time'})"
    return ""


def test_with_client_retries_most_faults_recover(faulty_server: OfflineServer) -> None:
    async def main() -> Batch[Outcome]:
        # a 1 s client timeout turns a hang into a retried request, like a real one would
        agent = agent_for(faulty_server, max_retries=2, timeout=1.0)
        try:
            return await run_bounded(agent, prompts(), max_concurrency=250, timeout=8.0)
        finally:
            await close(agent)

    started = time.perf_counter()
    outcomes = asyncio.run(main())
    kinds = check_outcomes(outcomes)
    print(f"\nretries on: {dict(kinds)} in {time.perf_counter() - started:.1f} s")
    assert kinds["fulfilled"] >= 0.98 * N


def test_without_retries_faults_surface_as_typed_errors(faulty_server: OfflineServer) -> None:
    async def main() -> Batch[Outcome]:
        agent = agent_for(faulty_server, max_retries=0, timeout=1.0)
        try:
            return await run_settled(agent, prompts())
        finally:
            await close(agent)

    started = time.perf_counter()
    outcomes = asyncio.run(main())
    kinds = check_outcomes(outcomes)
    rejected = N - kinds["fulfilled"]
    print(f"\nretries off: {dict(kinds)} in {time.perf_counter() - started:.1f} s")
    # two model calls per conversation at a 10% fault rate: 1 - 0.9² = 19% of conversations fail
    assert 0.14 * N <= rejected <= 0.24 * N
    assert {k.split("(")[0] for k in kinds if k != "fulfilled"} == {"BackendError"}
    assert any("500" in k for k in kinds) and any("429" in k for k in kinds)
