"""Exercise 01: a serial batch, measured: the total is the sum of the durations, and nothing overlaps."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import (
    describe,
    fail,
    first_overlap,
    not_awaited,
    order_problem,
    run_results,
    unfilled,
    wall_time,
)
from agentlab.records import RunResult

HINTS = [
    "Start the clock with `start = time.perf_counter()` just before the loop, and take "
    "`time.perf_counter() - start` just after it.",
    "Inside `for prompt in prompts:`, `await agent.run(prompt)` holds one whole conversation and gives back its "
    "RunResult: append it to a list.",
    "Four steps, in this order: start the clock; make `results` an empty list; in the loop, append what "
    "`await agent.run(prompt)` gives back; after the loop, `total = time.perf_counter() - start`.",
]


def check(results: Any = ..., total: Any = ..., prompts: Any = None, **_: Any) -> Feedback:
    """The results ran one after another (their own time stamps), and ``total`` measured the whole loop."""
    if problem := unfilled(results=results, total=total):
        return fail(problem)
    if not_awaited(results):
        return fail(
            "`results` holds coroutine objects, not results: calling `agent.run(prompt)` without `await` only "
            "creates a coroutine, and nothing runs. Write `await agent.run(prompt)` inside the loop."
        )
    runs = run_results(results)
    if runs is None:
        return fail(
            f"`results` should be a list of the RunResults that `await agent.run(prompt)` returned; "
            f"it is {describe(results)}."
        )
    if problem := order_problem(runs, prompts, "loop over `prompts` in order."):
        return fail(problem)
    if isinstance(total, bool) or not isinstance(total, (int, float)) or total <= 0:
        return fail(
            f"`total` should be the elapsed seconds, a positive number (`time.perf_counter() - start`); "
            f"it is {describe(total)}."
        )
    if problem := overlap_problem(runs):
        return fail(problem)
    return judge_total(runs, float(total))


def overlap_problem(runs: list[RunResult]) -> str | None:
    pair = first_overlap(runs)
    if pair is None:
        return None
    before, after = pair
    origin = min(r.started_at for r in runs)
    return (
        f"your conversations overlapped: conversation {after} started at {runs[after].started_at - origin:.2f} s, "
        f"before conversation {before} ended at {runs[before].ended_at - origin:.2f} s. This exercise is the serial "
        "baseline: `await agent.run(prompt)` inside the loop, one conversation after another (no gather, no tasks)."
    )


def judge_total(runs: list[RunResult], total: float) -> Feedback:
    durations = [r.duration for r in runs]
    summed, wall = sum(durations), wall_time(runs)
    parts = " + ".join(f"{d:.2f} s" for d in durations)
    if total < 0.95 * wall:
        return fail(
            f"your total is {total:.2f} s, but from the start of the first conversation to the end of the last "
            f"took {wall:.2f} s ({parts}): the clock started late or stopped early. Start it just before the "
            "loop (not inside it), and stop it just after."
        )
    if total > 3 * wall:  # room for what comes before the first start (the offline server starts on first use)
        return fail(
            f"your total ({total:.2f} s) is much more than the conversations took ({wall:.2f} s): start the clock "
            "just before the loop and stop it just after (a total is `time.perf_counter() - start`)."
        )
    return Feedback(
        True,
        (
            f"your total is {total:.2f} s, about the sum of the durations ({parts} = {summed:.2f} s): good.",
            "Each conversation started after the one before had ended: that is the serial baseline. Lesson 02 makes "
            "the total the longest one instead.",
        ),
    )
