"""Exercise 02: from a serial loop to create_task + gather, measured from the results themselves."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fail, not_awaited, order_problem, run_results, unfilled, wall_time
from agentlab.records import RunResult

HINTS = [
    "`await` inside the loop waits for each conversation before the next one starts. Start them all first, "
    "and wait only once, for all of them.",
    "`tasks = [asyncio.create_task(agent.run(p)) for p in prompts]` starts every conversation at once: "
    "nothing is awaited yet.",
    "Then `results = await asyncio.gather(*tasks)` waits for all of them, and returns the results in the order "
    "of the tasks, which is the order of the prompts.",
]


def check(prompts: Any = ..., results: Any = ..., **_: Any) -> Feedback:
    """Measure the learner's batch from the results' own start and end times: about the longest, or the sum?"""
    if problem := unfilled(prompts=prompts, results=results):
        return fail(problem)
    if not_awaited(results):
        return fail(
            "`results` holds coroutines or tasks (or a gather that was never awaited), not results: "
            "`results = await asyncio.gather(*tasks)` waits for them and gives the results."
        )
    runs = run_results(results)
    if runs is None:
        return fail(
            f"`results` should be the list of RunResults that `await asyncio.gather(*tasks)` returns; "
            f"it is {describe(results)}."
        )
    if problem := order_problem(
        runs,
        prompts,
        "`gather` keeps the order of its arguments, so create the tasks "
        "in the order of `prompts` (and do not sort the results by finishing time).",
    ):
        return fail(problem)
    return judge(runs)


def judge(runs: list[RunResult]) -> Feedback:
    """About the longest, or about the sum? Read from the results' own start and end times."""
    durations = [r.duration for r in runs]
    summed, longest = sum(durations), max(durations)
    wall = wall_time(runs)
    if len(runs) > 1 and wall >= 0.8 * summed:
        return fail(
            f"your batch took {wall:.2f} s, about the sum of durations ({summed:.2f} s): did you await inside the "
            "loop? Create all the tasks first, then gather them."
        )
    if wall > 1.25 * longest:
        return fail(
            f"your batch took {wall:.2f} s: less than the sum ({summed:.2f} s), but well above the longest "
            f"conversation ({longest:.2f} s). Are some of them still awaited one by one?"
        )
    return Feedback(
        True,
        (
            f"your batch took {wall:.2f} s, about the longest conversation ({longest:.2f} s) instead of the sum of "
            f"durations ({summed:.2f} s): {summed / wall:.2f}x faster.",
            "The results are in the order of the prompts.",
        ),
    )
