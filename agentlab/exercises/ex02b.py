"""Exercise 02b: tasks are eager, coroutines are lazy: start the batch, hold one more conversation meanwhile."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fail, not_awaited, order_problem, run_results, unfilled, wall_time
from agentlab.records import RunResult

HINTS = [
    "`agent.run(p)` on its own only makes a coroutine: it starts when something awaits it. "
    "`asyncio.create_task(agent.run(p))` starts it at once.",
    "Make the tasks first, then `side_result = await agent.run(side)`: while you wait for it, the tasks run.",
    "Three steps, in this order: one `asyncio.create_task` per prompt; then await the side conversation into "
    "`side_result`; only then gather the tasks into `results`.",
]


def check(prompts: Any = ..., results: Any = ..., side: Any = ..., **_: Any) -> Feedback:
    """Did the three conversations start before the side conversation ended, and run together?"""
    if problem := unfilled(prompts=prompts, results=results, side=side):
        return fail(problem)
    if not_awaited(side) or not_awaited(results):
        return fail(
            f"`{'side_result' if not_awaited(side) else 'results'}` holds a coroutine or a task nobody awaited: await it."
        )
    runs = run_results(results)
    if runs is None or not isinstance(side, RunResult):
        what = describe(side) if runs is not None else describe(results)
        return fail(
            f"`results` should be the list of RunResults from gather, and `side_result` one RunResult; got {what}."
        )
    if problem := order_problem(runs, prompts, "gather the tasks in the order of `prompts`."):
        return fail(problem)
    return judge(runs, side)


def judge(runs: list[RunResult], side: RunResult) -> Feedback:
    origin = min([side.started_at, *(r.started_at for r in runs)])
    first_start = min(r.started_at for r in runs) - origin
    side_start, side_end = side.started_at - origin, side.ended_at - origin
    if all(r.ended_at <= side.started_at for r in runs):
        return fail(
            f"the batch was over before the side conversation started (at {side_start:.2f} s): you awaited the "
            "batch first. Start the tasks, await the side conversation, and gather the tasks last."
        )
    if all(r.started_at >= side.ended_at for r in runs):  # lazy coroutines, or tasks made only after the side
        return fail(
            f"your conversations started at {first_start:.2f} s, only after the side conversation had ended "
            f"(at {side_end:.2f} s): none of them ran while you awaited it. A conversation starts when it becomes "
            "a task (`asyncio.create_task(...)`; a bare coroutine waits until something awaits it): make the tasks "
            "first, then await the side conversation, then gather the tasks."
        )
    durations = [r.duration for r in runs]
    if len(runs) > 1 and wall_time(runs) >= 0.8 * sum(durations):
        return fail(
            f"your {len(runs)} conversations ran one after another ({wall_time(runs):.2f} s, about the sum of "
            f"{sum(durations):.2f} s): make every task first, and await none of them inside the loop."
        )
    total = max([side.ended_at, *(r.ended_at for r in runs)]) - origin
    return Feedback(
        True,
        (
            f"your tasks started at {first_start:.2f} s, before the side conversation ended at {side_end:.2f} s: "
            "they ran while you awaited it.",
            f"Everything took {total:.2f} s, about the longest conversation ({max([side.duration, *durations]):.2f} s), "
            "not the sum: a task is eager, like a JavaScript promise.",
        ),
    )
