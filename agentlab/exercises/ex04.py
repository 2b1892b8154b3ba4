"""Exercise 04: speedup and efficiency by hand."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fill_in, missing
from agentlab.results import BatchReport

HINTS = [
    "Each item of `report.conversations` has a `.duration`; `report.wall_time` is the whole batch.",
    "speedup = sum of the durations / wall time.",
    "efficiency = the largest duration / wall time (a number between 0 and 1).",
]


def check(report: Any = ..., speedup: Any = ..., efficiency: Any = ..., **_: Any) -> Feedback:
    if names := missing(speedup=speedup, efficiency=efficiency):
        return Feedback(False, (fill_in(names),))
    if not isinstance(report, BatchReport):
        return Feedback(False, ("pass the batch's `report` to check(...) as well.",))
    messages, passed = [], True
    for name, mine, truth in (("speedup", speedup, report.speedup), ("efficiency", efficiency, report.efficiency)):
        if not isinstance(mine, (int, float)):
            return Feedback(False, (f"`{name}` should be a number.",))
        if abs(mine - truth) <= 0.01 * truth:
            messages.append(f"{name} {show(name, mine)} ✓ (the report says {show(name, truth)})")
        else:
            passed = False
            hint = "sum of durations / wall" if name == "speedup" else "longest duration / wall"
            messages.append(f"{name}: you have {show(name, mine)}, the report has {show(name, truth)}: {name} = {hint}")
    if passed:
        messages.append(
            "A speedup near the number of conversations and an efficiency near 100% mean "
            "the batch took about as long as its longest conversation."
        )
    return Feedback(passed, tuple(messages))


def show(name: str, value: float) -> str:
    return f"{value:.2f}x" if name == "speedup" else f"{value:.1%}"
