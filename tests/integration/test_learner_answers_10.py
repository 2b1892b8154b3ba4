"""Exercise 10's check against what learners write: 2 right ways, 5 plausible wrong ones, each judged for its reason.

Each answer runs for real, on one LocalCluster of 4 worker processes, against a fresh limited offline server
(the exercise's own settings, with a minute of 0.6 s instead of 3 s so that the module stays short).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, Budget, run_bounded
from agentlab.exercises import check
from agentlab.offline import LatencyModel, ServerConfig, start
from agentlab.tools.math import MATH_TOOLS

distributed = pytest.importorskip("distributed")
from agentlab.cluster import SharedBudget, run_distributed  # noqa: E402

RPM, TPM = 240, 6000
MINUTE = 0.6
PROMPTS = [f"What is {i} + {i + 1}?" for i in range(40)]
Answer = Callable[[Agent, Any], Awaitable[Any]]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    before = os.environ.get("AGENTLAB_TIME_SCALE")
    os.environ["AGENTLAB_TIME_SCALE"] = str(MINUTE / 60)
    try:
        with (
            distributed.LocalCluster(n_workers=4, threads_per_worker=1, processes=True, dashboard_address=":0") as c,
            distributed.Client(c) as client,
        ):
            yield client
    finally:
        os.environ.pop("AGENTLAB_TIME_SCALE") if before is None else os.environ.update(AGENTLAB_TIME_SCALE=before)


async def judged(client: Any, answer: Answer) -> Any:
    with start(ServerConfig(latency=LatencyModel(time_scale=MINUTE / 60)), rpm=RPM, tpm=TPM) as server:
        model = AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0)
        agent = Agent("calculator", "Use the tools.", tools=MATH_TOOLS, client=model)
        outcomes = await answer(agent, client)
        return check("10", prompts=PROMPTS, outcomes=outcomes, server=server, tokens_per_minute=TPM)


async def test_right_a_shared_budget(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:
        budget = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM)
        return await run_distributed(agent, PROMPTS, client, budget=budget)

    feedback = await judged(client, answer)
    assert feedback.passed, feedback
    assert "none refused with 429" in feedback.messages[0]


async def test_right_the_shorthand(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:
        return await run_distributed(agent, PROMPTS, client, requests_per_minute=RPM, tokens_per_minute=TPM)

    assert (await judged(client, answer)).passed


async def test_wrong_a_budget_per_worker(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:  # the exercise as handed out
        return await run_distributed(agent, PROMPTS, client, budget=Budget(RPM, TPM))

    feedback = await judged(client, answer)
    assert not feedback.passed and "each worker spent the whole limit" in feedback.messages[0]


async def test_wrong_no_budget(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:
        return await run_distributed(agent, PROMPTS, client)

    feedback = await judged(client, answer)
    assert not feedback.passed and "429" in feedback.messages[0]


async def test_wrong_sorted_by_duration(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:  # the right batch, sorted to show the slowest first
        batch = await run_distributed(agent, PROMPTS, client, requests_per_minute=RPM, tokens_per_minute=TPM)
        return sorted(batch, key=lambda o: -o.value.duration)

    feedback = await judged(client, answer)
    assert not feedback.passed and "Do not sort or filter it" in feedback.messages[0]


async def test_wrong_a_quarter_of_the_limit(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:  # "one quarter for each worker", but it is shared
        return await run_distributed(agent, PROMPTS, client, requests_per_minute=RPM / 4, tokens_per_minute=TPM / 4)

    feedback = await judged(client, answer)
    assert not feedback.passed and "not a worker's share" in feedback.messages[0]


async def test_wrong_in_this_process(client: Any) -> None:
    async def answer(agent: Agent, client: Any) -> Any:  # right budget, but no cluster
        return await run_bounded(agent, PROMPTS, requests_per_minute=RPM, tokens_per_minute=TPM)

    feedback = await judged(client, answer)
    assert not feedback.passed and "run_distributed" in feedback.messages[0]
