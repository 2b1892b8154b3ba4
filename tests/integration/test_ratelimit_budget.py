"""The budget against the real offline server with real limits: no 429s, N ordered outcomes, retries through it."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, AgentEvent, Fulfilled, Rejected, run_bounded, run_settled
from agentlab.budget import Budget, RequestTooLarge
from agentlab.errors import ConfigurationError
from agentlab.offline import OfflineServer, start
from agentlab.tools.math import multiply_numbers, sum_numbers

RPM, TPM = 300, 12_000  # per scaled minute of 3 s (AGENTLAB_TIME_SCALE=0.05)


@pytest.fixture
def limited() -> Iterator[OfflineServer]:
    with start(rpm=RPM, tpm=TPM) as server:
        yield server


def agent_for(server: OfflineServer, max_retries: int = 2) -> Agent:
    client = AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=max_retries)
    return Agent("calc", "Do the math with the tools.", tools=[sum_numbers, multiply_numbers], client=client)


def stats(server: OfflineServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/offline/stats") as answer:
        result: dict[str, Any] = json.load(answer)
    return result


def prompts(n: int, offset: int = 0) -> list[str]:
    return [f"What is {i} + {i + 1}?" for i in range(offset, offset + n)]


def assert_in_order(outcomes: list[Any], offset: int = 0) -> None:
    for i, outcome in enumerate(outcomes, offset):
        assert isinstance(outcome, Fulfilled), outcome
        assert str(2 * i + 1) in outcome.value.output_text


async def test_a_naive_batch_meets_the_limit_with_429s(limited: OfflineServer) -> None:
    """The limit is real: without a budget, 60 conversations at once get 429s (and some still fail)."""
    outcomes = await run_settled(agent_for(limited), prompts(60))
    assert len(outcomes) == 60
    assert stats(limited)["statuses"].get("429", 0) > 0


async def test_run_bounded_with_a_budget_gets_no_429(limited: OfflineServer) -> None:
    outcomes = await run_bounded(agent_for(limited), prompts(60), requests_per_minute=RPM, tokens_per_minute=TPM)
    assert_in_order(list(outcomes))
    counters = stats(limited)
    assert counters["statuses"].get("429", 0) == 0
    assert counters["ratelimit"]["spent_tokens"] > TPM  # it really spent more than one minute's worth


async def test_a_budget_without_numbers_learns_them_from_the_headers(limited: OfflineServer) -> None:
    budget = Budget()
    outcomes = await run_bounded(agent_for(limited), prompts(40), budget=budget)
    assert_in_order(list(outcomes))
    assert stats(limited)["statuses"].get("429", 0) == 0
    assert budget.tokens is not None and budget.tokens.capacity == TPM
    assert budget.requests is not None and budget.requests.capacity == RPM
    assert budget.minute == pytest.approx(3.0, rel=0.05)


async def test_two_batches_at_once_share_one_budget(limited: OfflineServer) -> None:
    budget = Budget(requests_per_minute=RPM, tokens_per_minute=TPM)
    agent = agent_for(limited)

    first, second = list(
        await asyncio.gather(
            run_bounded(agent, prompts(30), budget=budget),
            run_bounded(agent, prompts(30, offset=100), max_concurrency=5, budget=budget),
        )
    )
    assert_in_order(list(first))
    assert_in_order(list(second), offset=100)
    assert stats(limited)["statuses"].get("429", 0) == 0


async def test_a_429_anyway_waits_retry_after_and_retries_through_the_budget() -> None:
    with start(rpm=RPM, tpm=TPM) as server:  # a 429 on the first attempt of every request of these prompts
        budget = Budget(requests_per_minute=RPM, tokens_per_minute=TPM)
        agent = agent_for(server, max_retries=5)
        started = time.perf_counter()
        outcomes = await run_bounded(agent, [f"[fault=429x1] {p}" for p in prompts(3)], budget=budget)
        elapsed = time.perf_counter() - started
        counters = stats(server)
    assert_in_order(list(outcomes))
    assert budget.stats.rate_limited == counters["statuses"]["429"] == budget.stats.retries >= 3
    assert elapsed >= 0.05 * 3  # each 429 said "retry after 50 ms" (1 s × the time scale), and the budget waited


async def test_one_call_larger_than_the_whole_minute_fails_at_once(limited: OfflineServer) -> None:
    started = time.perf_counter()
    outcomes = await run_bounded(agent_for(limited), prompts(3), tokens_per_minute=20)
    assert time.perf_counter() - started < 5
    assert [type(o) for o in outcomes] == [Rejected, Rejected, Rejected]
    assert all(isinstance(o.reason, RequestTooLarge) for o in outcomes if isinstance(o, Rejected))
    assert "more than the whole budget of 20 tokens per minute" in str(outcomes[0].reason)  # type: ignore[union-attr]


async def test_run_bounded_needs_a_bound_and_not_two_budgets(limited: OfflineServer) -> None:
    agent = agent_for(limited)
    with pytest.raises(ConfigurationError, match="run_bounded needs a bound"):
        await run_bounded(agent, prompts(1))
    with pytest.raises(ConfigurationError, match="either budget="):
        await run_bounded(agent, prompts(1), budget=Budget(), tokens_per_minute=100)
    with pytest.raises(ConfigurationError, match="^tokens_per_minute must be a number greater than 0"):
        await run_bounded(agent, prompts(1), tokens_per_minute=-1)


async def test_a_streaming_agent_under_a_budget_gets_no_429_and_its_text_on_the_way(limited: OfflineServer) -> None:
    """One seam for a model call: the budget wraps a streamed call as it wraps a plain one."""
    client = AsyncOpenAI(base_url=limited.base_url, api_key="offline")
    agent = Agent(
        "calc", "Do the math with the tools.", tools=[sum_numbers, multiply_numbers], client=client, stream=True
    )
    deltas: dict[int, list[str]] = {}

    def collect(index: int, event: AgentEvent) -> None:
        if event.kind == "text_delta":
            deltas.setdefault(index, []).append(event.detail)

    outcomes = await run_bounded(agent, prompts(60), requests_per_minute=RPM, tokens_per_minute=TPM, on_event=collect)
    assert_in_order(list(outcomes))
    assert stats(limited)["statuses"].get("429", 0) == 0
    for index, outcome in enumerate(outcomes):
        assert isinstance(outcome, Fulfilled) and "".join(deltas[index]) == outcome.value.output_text
