"""check("07"): real learner code, right and wrong, against a fresh rate-limited offline server each time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, Budget, run_bounded, run_settled
from agentlab.exercises import check
from agentlab.offline import OfflineServer, start

RPM, TPM = 120, 800  # as in the exercise notebook
PROMPTS = [f"What is {i} + {i + 2}?" for i in range(40)]
Attempt = Callable[[Agent, list[str]], Awaitable[Any]]


def attempt(learner: Attempt, prompts: list[str] = PROMPTS) -> tuple[Any, OfflineServer]:
    """Run the learner's code on a fresh limited server, as the exercise's first cell makes one."""
    server = start(rpm=RPM, tpm=TPM)
    agent = Agent("calculator", "You answer arithmetic questions in one short sentence.", client=None)

    async def main() -> Any:
        async with AsyncOpenAI(base_url=server.base_url, api_key="offline") as client:
            return await learner(Agent(agent.name, agent.instructions, client=client), prompts)

    try:
        return asyncio.run(main()), server
    except BaseException:
        server.stop()
        raise


def verdict(outcomes: Any, server: OfflineServer, prompts: list[str] = PROMPTS) -> tuple[bool, str]:
    try:
        feedback = check("07", prompts=prompts, outcomes=outcomes, server=server, tokens_per_minute=TPM)
    finally:
        server.stop()
    return feedback.passed, " ".join(feedback.messages)


# -- Right answers ----------------------------------------------------------------------------------------


async def with_the_numbers(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)


async def with_a_budget_that_learns_them(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, budget=Budget())


async def with_a_bound_and_the_numbers(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, max_concurrency=8, tokens_per_minute=TPM)


@pytest.mark.parametrize("learner", [with_the_numbers, with_a_budget_that_learns_them, with_a_bound_and_the_numbers])
def test_right_answers_pass(learner: Attempt) -> None:
    passed, message = verdict(*attempt(learner))
    assert passed, message
    assert "no 429" in message


# -- Wrong answers, each with a message that names the mistake ---------------------------------------------


def test_the_cell_left_as_it_was() -> None:
    server = start(rpm=RPM, tpm=TPM)
    passed, message = verdict(..., server)
    assert not passed and "outcomes" in message


def test_run_bounded_never_awaited() -> None:
    async def learner(agent: Agent, prompts: list[str]) -> Any:
        coroutine = run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)
        coroutine.close()  # what a learner keeps when they forget `await`
        return coroutine

    passed, message = verdict(*attempt(learner))
    assert not passed and "never awaited" in message


def test_a_naive_gather_meets_429s() -> None:
    async def learner(agent: Agent, prompts: list[str]) -> Any:
        return await run_settled(agent, prompts)

    passed, message = verdict(*attempt(learner))
    assert not passed and "429" in message and "requests_per_minute=" in message


def test_a_concurrency_guess_is_not_a_rate_limit() -> None:
    async def learner(agent: Agent, prompts: list[str]) -> Any:
        return await run_bounded(agent, prompts, max_concurrency=20)

    passed, message = verdict(*attempt(learner))
    assert not passed and "max_concurrency caps how many run at once, not how many per minute" in message


def test_a_budget_far_below_the_limit_leaves_it_unspent() -> None:
    async def learner(agent: Agent, prompts: list[str]) -> Any:
        return await run_bounded(agent, prompts, tokens_per_minute=200)

    prompts = PROMPTS[:12]
    outcomes, server = attempt(learner, prompts)
    passed, message = verdict(outcomes, server, prompts)
    assert not passed and "used only" in message and "of the 800 tokens per minute" in message


def test_sorted_outcomes_are_out_of_order() -> None:
    async def learner(agent: Agent, prompts: list[str]) -> Any:
        outcomes = await run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)
        return sorted(outcomes, key=lambda o: o.value.output_text)

    passed, message = verdict(*attempt(learner))
    assert not passed and "answers another prompt" in message and "do not sort" in message


def test_only_some_prompts_kept() -> None:
    async def learner(agent: Agent, prompts: list[str]) -> Any:
        return await run_bounded(agent, prompts[:10], requests_per_minute=RPM, tokens_per_minute=TPM)

    passed, message = verdict(*attempt(learner))
    assert not passed and "one outcome per prompt" in message
