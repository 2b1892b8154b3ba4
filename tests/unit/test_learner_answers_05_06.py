"""Exercises 05 and 06, answered by real learner code against the offline server (see the 01_02 file).

Times in the exercises are lesson seconds; here the lookup is multiplied by the suite's time scale, as the
offline server does with its own delays, so that it keeps its proportion to a model turn.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agentlab import Agent, as_completed, make_client, run_bounded, run_concurrent, run_serial, tool
from agentlab.exercises import check
from agentlab.tools.math import MATH_TOOLS

SCALE = float(os.environ["AGENTLAB_TIME_SCALE"])
PROMPTS = [f"What is {i} + 1? [duration=1]" for i in range(12)]
PROMPTS[7] = "What is 7 + 1? [fault=hang]"
# A healthy conversation takes 1 s of lesson time (0.05 s here), plus the machine's own overhead per request,
# which does not shrink with the scale (0.1 s or more on a busy 2-core machine): the deadline leaves room for it.
TIMEOUT = 1.0
Answer = Callable[[Agent], Awaitable[Any]]


@pytest.fixture(autouse=True, scope="module")
def warm_server() -> None:
    """The first requests of a process wait for the server and fresh connections: not the learner's doing."""
    agent = Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS)
    asyncio.run(run_bounded(agent, [p for p in PROMPTS if "hang" not in p], max_concurrency=4))


async def judge_05(answer: Answer) -> Any:
    async def exercise() -> Any:
        # A client that gives up on a hung request quickly: the exercise's default one takes about 25 s.
        client = make_client(max_retries=0, timeout=2 * TIMEOUT)
        agent = Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
        try:
            return await answer(agent)
        finally:
            await client.close()

    outcomes = await exercise()
    return check("05", prompts=PROMPTS, outcomes=outcomes, max_concurrency=4)


async def bounded(agent: Agent) -> Any:
    return await run_bounded(agent, PROMPTS, max_concurrency=4, timeout=TIMEOUT)


async def semaphore_and_timeout_by_hand(agent: Agent) -> Any:
    limit = asyncio.Semaphore(4)

    async def one(prompt: str) -> Any:
        async with limit:
            async with asyncio.timeout(TIMEOUT):
                return await agent.run(prompt)

    return await asyncio.gather(*(one(p) for p in PROMPTS), return_exceptions=True)


async def as_completed_in_order(agent: Agent) -> Any:
    found = {i: o async for i, o in as_completed(agent, PROMPTS, max_concurrency=4, timeout=TIMEOUT)}
    return [found[i] for i in range(len(PROMPTS))]


MISTAKES_05: dict[str, tuple[Answer, str]] = {
    "no timeout": (lambda a: run_bounded(a, PROMPTS, max_concurrency=4), "not cut by a deadline of yours"),
    "timeout too short": (
        lambda a: run_bounded(a, PROMPTS, max_concurrency=4, timeout=0.3 * SCALE),
        "shorter than a healthy conversation",
    ),
    "no limit": (  # (a longer deadline: twelve at once on a busy machine may take it, and this case is the limit)
        lambda a: run_bounded(a, PROMPTS, max_concurrency=12, timeout=3 * TIMEOUT),
        "the limit is 4",
    ),
    "limit of one": (lambda a: run_bounded(a, PROMPTS, max_concurrency=1, timeout=TIMEOUT), "at most 1 conversation"),
    "sorted by status": (
        lambda a: sorted_by_status(run_bounded(a, PROMPTS, max_concurrency=4, timeout=TIMEOUT)),
        "answers another prompt",
    ),
    "failures dropped": (
        lambda a: only_fulfilled(run_bounded(a, PROMPTS, max_concurrency=4, timeout=TIMEOUT)),
        "one outcome per prompt",
    ),
}


async def sorted_by_status(batch: Awaitable[list[Any]]) -> list[Any]:
    return sorted(await batch, key=lambda o: o.status)


async def only_fulfilled(batch: Awaitable[list[Any]]) -> list[Any]:
    return [o for o in await batch if o.status == "fulfilled"]


@pytest.mark.parametrize("answer", [bounded, semaphore_and_timeout_by_hand, as_completed_in_order])
async def test_05_accepts_a_bound_and_a_deadline_written_three_ways(answer: Answer) -> None:
    feedback = await judge_05(answer)
    assert feedback.passed, feedback
    assert "the hung prompt [7] timed out; at most 4 ran at once (limit 4)" in feedback.messages[0]


@pytest.mark.parametrize("mistake", MISTAKES_05)
async def test_05_refuses_each_mistake_and_names_it(mistake: str) -> None:
    answer, words = MISTAKES_05[mistake]
    feedback = await judge_05(answer)
    assert not feedback.passed and words in feedback.messages[0], feedback
    if mistake != "no timeout":
        assert "timeout=?" not in feedback.messages[0]


def test_05_an_unawaited_batch_is_named() -> None:
    pending = asyncio.sleep(0)
    try:
        assert "never awaited" in check("05", prompts=PROMPTS, outcomes=pending).messages[0]
    finally:
        pending.close()


# -- 06: a slow lookup that does not block the loop ------------------------------------------------------

LOOKUP = 1 * SCALE  # one lookup: 1 s of lesson time, about two model turns
FOUR = [f"What is {i} + 1?" for i in range(4)]


async def judge_06(lookup: Callable[..., Any], runner: Callable[..., Awaitable[Any]] = run_concurrent) -> Any:
    agent = Agent(name="calculator", instructions="Use the tools.", tools=[tool(lookup, name="lookup_sum")])

    async def exercise() -> tuple[Any, float]:
        start = time.perf_counter()
        results = await runner(agent, FOUR)
        return results, time.perf_counter() - start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited": a mistake's own warning
        results, total = await exercise()
    return check("06", results=results, total=total, tool_seconds=LOOKUP)


async def awaits_asyncio_sleep(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    await asyncio.sleep(LOOKUP)
    return a + b


async def awaits_a_thread(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    await asyncio.to_thread(time.sleep, LOOKUP)
    return a + b


def plain_def(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    time.sleep(LOOKUP)
    return a + b


async def still_time_sleep(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    time.sleep(LOOKUP)  # noqa: ASYNC251 - the mistake under test
    return a + b


async def yields_once_then_blocks(a: float, b: float) -> float:  # the case: every call starts, then blocks
    """Add two numbers after a slow lookup."""
    await asyncio.sleep(0)
    time.sleep(LOOKUP)  # noqa: ASYNC251 - the mistake under test
    return a + b


async def hundred_times_shorter(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    time.sleep(LOOKUP / 100)  # noqa: ASYNC251 - the mistake under test
    return a + b


async def sleep_not_awaited(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    asyncio.sleep(LOOKUP)  # noqa: RUF006 - the mistake under test
    return a + b


async def thread_not_awaited(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    asyncio.to_thread(time.sleep, LOOKUP)
    return a + b


async def returns_the_product(a: float, b: float) -> float:
    """Add two numbers after a slow lookup."""
    await asyncio.sleep(LOOKUP)
    return a * b


@pytest.mark.parametrize("lookup", [awaits_asyncio_sleep, awaits_a_thread, plain_def])
async def test_06_accepts_a_lookup_that_waits_without_blocking_three_ways(lookup: Callable[..., Any]) -> None:
    feedback = await judge_06(lookup)
    assert feedback.passed, feedback
    assert "at the same time" in feedback.messages[0]


@pytest.mark.parametrize(
    ("lookup", "words"),
    [
        (still_time_sleep, "The tool still blocks the event loop"),
        (yields_once_then_blocks, "The tool still blocks the event loop"),
        (hundred_times_shorter, "A shorter sleep hides the problem"),
        (sleep_not_awaited, "without `await`"),
        (thread_not_awaited, "without `await`"),
        (returns_the_product, "keep what it returns"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_06_refuses_each_mistake_and_names_it(lookup: Callable[..., Any], words: str) -> None:
    feedback = await judge_06(lookup)
    assert not feedback.passed and words in feedback.messages[0], feedback


async def test_06_refuses_a_changed_runner() -> None:
    feedback = await judge_06(awaits_asyncio_sleep, runner=run_serial)
    assert not feedback.passed and "keep `run_concurrent`" in feedback.messages[0], feedback
