"""Exercises 01, 02 and 02b, answered by real learner code: async code with agentlab, offline server.

Each answer is what a learner could type in the TODO cell. The wrong ones are the mistakes that teach the
opposite lesson; each must get ✗ and a message that names the mistake. The right ones (at least two distinct
approaches per exercise) must get ✓. Everything runs at the suite's time scale (0.05), so the checks' verdicts
are also shown to be scale-free: the exercises run at 1 in a notebook.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agentlab import Agent, run_concurrent, run_serial
from agentlab.exercises import check
from agentlab.tools.math import MATH_TOOLS

AGENT = Agent(name="calculator", instructions="You are a careful math assistant. Use the tools.", tools=MATH_TOOLS)
PROMPTS = ["What is 2 + 3? [duration=3]", "What is 4 * 5? [duration=2]", "What is 9 - 1? [duration=1]"]
SIDE = "What is 100 + 1? [duration=2]"
Answer = Callable[[], Awaitable[dict[str, Any]]]


async def judge(exercise: str, answer: Answer, **extra: Any) -> Any:
    """Run the learner's answer on the test's own event loop, then check it as the notebook's check cell does."""
    answers = await answer()
    try:
        return check(exercise, **extra, **answers)
    finally:
        for value in answers.values():
            for item in value if isinstance(value, list) else [value]:
                if inspect.iscoroutine(item):
                    item.close()  # a mistake's coroutine that never ran


async def refused(exercise: str, answer: Answer, words: str, **extra: Any) -> Any:
    """✗, with ``words`` in the message (``"a|b"``: either one, where noise may tip a borderline case)."""
    feedback = await judge(exercise, answer, **extra)
    assert not feedback.passed, feedback
    assert any(w in feedback.messages[0] for w in words.split("|")), feedback
    return feedback


# -- 01: a serial loop, timed ----------------------------------------------------------------------------


async def serial_append() -> dict[str, Any]:
    start = time.perf_counter()
    results = []
    for prompt in PROMPTS:
        results.append(await AGENT.run(prompt))
    return {"results": results, "total": time.perf_counter() - start}


async def serial_comprehension() -> dict[str, Any]:
    start = time.perf_counter()
    results = [await AGENT.run(prompt) for prompt in PROMPTS]
    return {"results": results, "total": time.perf_counter() - start}


async def serial_runner() -> dict[str, Any]:
    start = time.perf_counter()
    results = await run_serial(AGENT, PROMPTS)
    return {"results": list(results), "total": time.perf_counter() - start}


async def gathered_then_summed() -> dict[str, Any]:  # the case: concurrent, and a "total" that is the sum
    results = await asyncio.gather(*(AGENT.run(p) for p in PROMPTS))
    return {"results": results, "total": sum(r.duration for r in results)}


async def no_await() -> dict[str, Any]:
    start = time.perf_counter()
    results = [AGENT.run(prompt) for prompt in PROMPTS]
    return {"results": results, "total": time.perf_counter() - start}


async def clock_inside_loop() -> dict[str, Any]:
    results = []
    for prompt in PROMPTS:
        start = time.perf_counter()
        results.append(await AGENT.run(prompt))
    return {"results": results, "total": time.perf_counter() - start}


async def clock_reading_not_a_difference() -> dict[str, Any]:
    results = [await AGENT.run(prompt) for prompt in PROMPTS]
    return {"results": results, "total": time.perf_counter()}


async def answers_instead_of_results() -> dict[str, Any]:
    start = time.perf_counter()
    results = [(await AGENT.run(prompt)).output_text for prompt in PROMPTS]
    return {"results": results, "total": time.perf_counter() - start}


async def reversed_loop() -> dict[str, Any]:
    start = time.perf_counter()
    results = [await AGENT.run(prompt) for prompt in reversed(PROMPTS)]
    return {"results": results, "total": time.perf_counter() - start}


async def tasks_then_gather_timed() -> dict[str, Any]:
    start = time.perf_counter()
    results = await asyncio.gather(*(asyncio.create_task(AGENT.run(p)) for p in PROMPTS))
    return {"results": results, "total": time.perf_counter() - start}


@pytest.mark.parametrize("answer", [serial_append, serial_comprehension, serial_runner])
async def test_01_accepts_a_serial_loop_written_three_ways(answer: Answer) -> None:
    feedback = await judge("01", answer, prompts=PROMPTS)
    assert feedback.passed, feedback
    assert "about the sum of the durations" in feedback.messages[0]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (gathered_then_summed, "your conversations overlapped: conversation"),
        (tasks_then_gather_timed, "your conversations overlapped"),
        (no_await, "holds coroutine objects"),
        (clock_inside_loop, "the clock started late or stopped early"),
        (clock_reading_not_a_difference, "much more than the conversations took"),
        (answers_instead_of_results, "should be a list of the RunResults"),
        (reversed_loop, "not in the order of the prompts"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_01_refuses_each_mistake_and_names_it(answer: Answer, words: str) -> None:
    await refused("01", answer, words, prompts=PROMPTS)


# -- 02: from the loop to create_task + gather -----------------------------------------------------------


async def tasks_and_gather() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    return {"results": await asyncio.gather(*tasks)}


async def task_group() -> dict[str, Any]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(AGENT.run(p)) for p in PROMPTS]
    return {"results": [t.result() for t in tasks]}


async def concurrent_runner() -> dict[str, Any]:
    return {"results": list(await run_concurrent(AGENT, PROMPTS))}


async def unchanged_loop() -> dict[str, Any]:
    return {"results": [await AGENT.run(p) for p in PROMPTS]}


async def task_awaited_in_the_loop() -> dict[str, Any]:
    results = []
    for prompt in PROMPTS:
        task = asyncio.create_task(AGENT.run(prompt))
        results.append(await task)
    return {"results": results}


async def gather_not_awaited() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    await asyncio.wait(tasks)  # (only so that the test leaves nothing running; the mistake is the next line)
    return {"results": asyncio.gather(*tasks)}


async def tasks_not_gathered() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    await asyncio.wait(tasks)
    return {"results": tasks}


async def in_finishing_order() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    return {"results": [await t for t in asyncio.as_completed(tasks)]}


async def two_gathered_then_one_awaited() -> dict[str, Any]:
    results = await asyncio.gather(*(AGENT.run(p) for p in PROMPTS[:2]))
    results.append(await AGENT.run(PROMPTS[2]))
    return {"results": results}


@pytest.mark.parametrize("answer", [tasks_and_gather, task_group, concurrent_runner])
async def test_02_accepts_concurrency_written_three_ways(answer: Answer) -> None:
    feedback = await judge("02", answer, prompts=PROMPTS)
    assert feedback.passed, feedback
    assert "about the longest conversation" in feedback.messages[0]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (unchanged_loop, "did you await inside the loop?"),
        (task_awaited_in_the_loop, "did you await inside the loop?"),
        (gather_not_awaited, "a gather that was never awaited"),
        (tasks_not_gathered, "holds coroutines or tasks"),
        (in_finishing_order, "not in the order of the prompts"),
        (two_gathered_then_one_awaited, "still awaited one by one|await inside the loop"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_02_refuses_each_mistake_and_names_it(answer: Answer, words: str) -> None:
    await refused("02", answer, words, prompts=PROMPTS)


# -- 02b: tasks are eager: start the batch, hold a side conversation meanwhile ---------------------------


async def eager_tasks() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    side = await AGENT.run(SIDE)
    return {"results": await asyncio.gather(*tasks), "side": side}


async def eager_futures() -> dict[str, Any]:
    futures = [asyncio.ensure_future(AGENT.run(p)) for p in PROMPTS]
    side = await AGENT.run(SIDE)
    return {"results": [await f for f in futures], "side": side}


async def task_group_around_the_side() -> dict[str, Any]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(AGENT.run(p)) for p in PROMPTS]
        side = await AGENT.run(SIDE)
    return {"results": [t.result() for t in tasks], "side": side}


async def tasks_made_after_the_side() -> dict[str, Any]:  # tasks, but made too late: not a lazy-coroutine mistake
    side = await AGENT.run(SIDE)
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    return {"results": await asyncio.gather(*tasks), "side": side}


async def lazy_coroutines() -> dict[str, Any]:
    coroutines = [AGENT.run(p) for p in PROMPTS]
    side = await AGENT.run(SIDE)
    return {"results": await asyncio.gather(*coroutines), "side": side}


async def batch_awaited_first() -> dict[str, Any]:
    results = await asyncio.gather(*(AGENT.run(p) for p in PROMPTS))
    return {"results": results, "side": await AGENT.run(SIDE)}


async def side_as_the_task() -> dict[str, Any]:  # the side conversation runs on, the batch is awaited one by one
    side_task = asyncio.create_task(AGENT.run(SIDE))
    results = [await AGENT.run(p) for p in PROMPTS]
    return {"results": results, "side": await side_task}


async def side_not_awaited() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    side = AGENT.run(SIDE)
    return {"results": await asyncio.gather(*tasks), "side": side}


async def side_as_text() -> dict[str, Any]:
    tasks = [asyncio.create_task(AGENT.run(p)) for p in PROMPTS]
    side = (await AGENT.run(SIDE)).output_text
    return {"results": await asyncio.gather(*tasks), "side": side}


@pytest.mark.parametrize("answer", [eager_tasks, eager_futures, task_group_around_the_side])
async def test_02b_accepts_tasks_started_before_the_side_conversation(answer: Answer) -> None:
    feedback = await judge("02b", answer, prompts=PROMPTS)
    assert feedback.passed, feedback
    assert "before the side conversation ended" in feedback.messages[0]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lazy_coroutines, "none of them ran while you awaited it"),
        (tasks_made_after_the_side, "make the tasks first, then await the side conversation"),
        (batch_awaited_first, "you awaited the batch first"),
        (side_as_the_task, "ran one after another"),
        (side_not_awaited, "`side_result` holds a coroutine"),
        (side_as_text, "one RunResult; got a str"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_02b_refuses_each_mistake_and_names_it(answer: Answer, words: str) -> None:
    feedback = await refused("02b", answer, words, prompts=PROMPTS)
    assert "Wrap each one" not in str(feedback), "advice for a mistake the check cannot see"
