"""check("07"): real learner code, right and wrong, against a fresh rate-limited offline server each time.

As in the exercise's first cell, the client's own retries are off: every 429 the learner's batch meets is one
of its outcomes, which is what the check judges (not the server's counters, which also hold earlier tries).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, Budget, run_bounded, run_settled
from agentlab.exercises import check
from agentlab.offline import OfflineServer, start

RPM, TPM = 120, 800  # as in the exercise notebook
PROMPTS = [f"What is {i} + {i + 2}?" for i in range(40)]
Attempt = Callable[[Agent, list[str]], Awaitable[Any]]


@asynccontextmanager
async def exercise() -> AsyncIterator[tuple[Agent, OfflineServer]]:
    """The exercise's first cell: a fresh limited server, a client without retries, the agent."""
    with start(rpm=RPM, tpm=TPM) as server:
        async with AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0) as client:
            yield Agent("calculator", "You answer arithmetic questions in one short sentence.", client=client), server


async def verdict(learner: Attempt, prompts: list[str] = PROMPTS, *, tried_before: Attempt | None = None) -> Any:
    async with exercise() as (agent, server):
        if tried_before is not None:  # a first try on the same server, then the learner's answer
            await tried_before(agent, prompts)
        outcomes = await learner(agent, prompts)
        return check("07", prompts=prompts, outcomes=outcomes, server=server, tokens_per_minute=TPM)


def share_used(message: str) -> int:
    found = re.search(r"at (?:only )?(\d+)% of the 800 per minute", message)
    assert found, message
    return int(found.group(1))


# -- Right answers ----------------------------------------------------------------------------------------


async def with_the_numbers(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)


async def with_a_budget_that_learns_them(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, budget=Budget())


async def with_a_bound_and_the_numbers(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, max_concurrency=8, tokens_per_minute=TPM)


async def naive(agent: Agent, prompts: list[str]) -> Any:
    return await run_settled(agent, prompts)


@pytest.mark.parametrize("learner", [with_the_numbers, with_a_budget_that_learns_them, with_a_bound_and_the_numbers])
async def test_right_answers_pass_and_use_the_whole_limit(learner: Attempt) -> None:
    feedback = await verdict(learner)
    assert feedback.passed, feedback
    assert "none refused with 429" in feedback.messages[0] and share_used(feedback.messages[0]) >= 60


async def test_a_right_answer_after_a_naive_try_on_the_same_server_passes() -> None:
    feedback = await verdict(with_the_numbers, PROMPTS[:20], tried_before=naive)  # the naive try met 429s
    assert feedback.passed, feedback
    assert share_used(feedback.messages[0]) >= 60


# -- Wrong answers, each with a message that names the mistake ---------------------------------------------


async def never_awaited(agent: Agent, prompts: list[str]) -> Any:
    coroutine = run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)
    coroutine.close()  # what a learner keeps when they forget `await`
    return coroutine


async def a_concurrency_guess(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, max_concurrency=20)


async def a_small_concurrency_guess(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts, max_concurrency=4)


async def a_budget_far_below_the_limit(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts[:12], tokens_per_minute=200)


async def sorted_outcomes(agent: Agent, prompts: list[str]) -> Any:
    outcomes = await run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)
    return sorted(outcomes, key=lambda o: o.value.output_text)


async def only_some_prompts(agent: Agent, prompts: list[str]) -> Any:
    return await run_bounded(agent, prompts[:10], requests_per_minute=RPM, tokens_per_minute=TPM)


async def the_cell_left_as_it_was(agent: Agent, prompts: list[str]) -> Any:
    return ...


@pytest.mark.parametrize(
    ("learner", "named"),
    [
        (the_cell_left_as_it_was, "fill in `outcomes`"),
        (never_awaited, "never awaited"),
        (naive, "were refused with 429"),
        (a_concurrency_guess, "max_concurrency caps how many run at once, not how many per minute"),
        (a_small_concurrency_guess, "were refused with 429"),
        (sorted_outcomes, "answers another prompt"),
        (only_some_prompts, "one outcome per prompt"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_plausible_mistakes_are_named(learner: Attempt, named: str) -> None:
    feedback = await verdict(learner)
    assert not feedback.passed and named in feedback.messages[0], feedback


async def test_a_budget_far_below_the_limit_leaves_it_unspent() -> None:
    feedback = await verdict(a_budget_far_below_the_limit, PROMPTS[:12])
    assert not feedback.passed and "at only" in feedback.messages[0], feedback
    assert share_used(feedback.messages[0]) < 60
