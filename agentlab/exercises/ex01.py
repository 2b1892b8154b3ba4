"""Exercise 01: a serial batch, measured: the total is the sum of the durations."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fill_in, missing, not_awaited, order_problem, run_results

HINTS = [
    "Start the clock with `start = time.perf_counter()` just before the loop, and take "
    "`time.perf_counter() - start` just after it.",
    "Inside `for prompt in prompts:`, `await agent.run(prompt)` holds one whole conversation and gives back its "
    "RunResult: append it to a list.",
    "`start = time.perf_counter()`, `results = []`, then `for prompt in prompts: results.append(await agent.run(prompt))`, "
    "then `total = time.perf_counter() - start`.",
]


def check(results: Any = ..., total: Any = ..., prompts: Any = None, **_: Any) -> Feedback:
    """Compare the learner's measured ``total`` with the sum of the durations read from their results."""
    if names := missing(results=results, total=total):
        return Feedback(False, (fill_in(names),))
    if not_awaited(results):
        return Feedback(
            False,
            (
                "`results` holds coroutine objects, not results: calling `agent.run(prompt)` without `await` only "
                "creates a coroutine, and nothing runs. Write `await agent.run(prompt)` inside the loop.",
            ),
        )
    runs = run_results(results)
    if runs is None:
        return Feedback(
            False,
            (
                f"`results` should be a list of the RunResults that `await agent.run(prompt)` returned; "
                f"it is {describe(results)}.",
            ),
        )
    if problem := order_problem(runs, prompts, "loop over `prompts` in order."):
        return Feedback(False, (problem,))
    if isinstance(total, bool) or not isinstance(total, (int, float)) or total <= 0:
        return Feedback(
            False,
            (
                f"`total` should be the elapsed seconds, a positive number (`time.perf_counter() - start`); "
                f"it is {describe(total)}.",
            ),
        )
    durations = [r.duration for r in runs]
    summed = sum(durations)
    parts = " + ".join(f"{d:.2f} s" for d in durations)
    if total < 0.9 * summed:
        return Feedback(
            False,
            (
                f"your total is {total:.2f} s, but the conversations add up to {summed:.2f} s ({parts}): they "
                "overlapped, or the clock started late. This exercise runs them one after another, and times the "
                "whole loop.",
            ),
        )
    if total > 1.5 * summed + 0.5:
        return Feedback(
            False,
            (
                f"your total ({total:.2f} s) is much more than the conversations took ({summed:.2f} s): start the clock "
                "just before the loop and stop it just after.",
            ),
        )
    return Feedback(
        True,
        (
            f"your total is {total:.2f} s, about the sum of the durations ({parts} = {summed:.2f} s): good.",
            "That is the serial baseline: awaited one after another, the total is the sum. Lesson 02 makes it the "
            "longest one instead.",
        ),
    )
