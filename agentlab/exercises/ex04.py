"""Exercise 04: speedup and efficiency by hand, from a batch whose efficiency is well under 100%."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fail, unfilled
from agentlab.records import BatchReport

HINTS = [
    "Each item of `report.conversations` has a `.duration`; `report.wall_time` is the whole batch.",
    "speedup = sum of the durations / wall time.",
    "efficiency = the largest duration / wall time (a number between 0 and 1).",
]
TOLERANCE = 0.01  # relative; the ideal figures (N, 100%) and the known mistakes are 20% or more away
ROUNDED = 0.005 + 1e-9  # a figure rounded to 2 decimals is off by up to half a step, e.g. 0.455 -> 0.45


def check(report: Any = ..., speedup: Any = ..., efficiency: Any = ..., **_: Any) -> Feedback:
    if problem := unfilled(speedup=speedup, efficiency=efficiency):
        return fail(problem)
    if not isinstance(report, BatchReport) or report.wall_time <= 0 or not report.conversations:
        return fail("pass the batch's `report` to check(...) as well.")
    messages, passed = [], True
    for name, mine in (("speedup", speedup), ("efficiency", efficiency)):
        if isinstance(mine, bool) or not isinstance(mine, (int, float)):
            return fail(f"`{name}` should be a number.")
        verdict = judge(name, float(mine), report)
        passed = passed and verdict is None
        truth = report.speedup if name == "speedup" else report.efficiency
        messages.append(verdict or f"{name} {show(name, mine)} ✓ (the report says {show(name, truth)})")
    if passed:
        messages.append(meaning(report))
    return Feedback(passed, tuple(messages))


def judge(name: str, mine: float, report: BatchReport) -> str | None:
    """None when ``mine`` is the report's figure; otherwise a message that names the likely mistake."""
    truth = report.speedup if name == "speedup" else report.efficiency
    if abs(mine - truth) <= max(TOLERANCE * truth, ROUNDED):
        return None
    durations = [c.duration for c in report.conversations]
    wall, n = report.wall_time, report.n
    known = {
        "speedup": [
            (wall / sum(durations), "that is wall / sum, upside down"),
            (float(n), "that is the number of conversations, the best case, not this batch"),
            (sum(c.end for c in report.conversations) / wall, "that adds up end times, not durations"),
        ],
        "efficiency": [
            (1.0, "100% is the ideal, not this batch: measure it"),
            (100 * truth, "write it as a share between 0 and 1, not a percentage"),
            (min(durations) / wall, "that is the shortest conversation, use the longest"),
            (sum(durations) / n / wall, "that is the average duration, use the longest"),
            (wall / max(durations), "that is wall / longest, upside down"),
        ],
    }[name]
    why = next((reason for value, reason in known if abs(mine - value) <= TOLERANCE * abs(value)), None)
    hint = "sum of durations / wall" if name == "speedup" else "longest duration / wall"
    detail = f" ({why})" if why else ""
    return f"{name}: you have {show(name, mine)}{detail}; the report has {show(name, truth)}: {name} = {hint}"


def meaning(report: BatchReport) -> str:
    """What the two figures say about this batch (numbers only as ``1.67x``, which nbval's sanitizer knows)."""
    return (
        f"A speedup of {report.speedup:.2f}x means that the conversations added up to {report.speedup:.2f}x the "
        "wall time: that many ran at once, on average. An efficiency of "
        f"{report.efficiency:.0%} means that the batch took {1 / report.efficiency:.2f}x as long as its longest "
        "conversation (100% would be the best case)."
    )


def show(name: str, value: float) -> str:
    return f"{value:.2f}x" if name == "speedup" else f"{value:.1%}"
