"""Exercise 06: a tool that does not block the event loop."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fill_in, missing, run_results

HINTS = [
    "`time.sleep` inside `async def` blocks the thread that runs every conversation.",
    "Either `await asyncio.sleep(...)` inside the async tool, or make it a plain `def` (the Agent runs it in a thread).",
    "With the fix, the four tool calls overlap: the batch takes about one tool call's time, not four.",
]


def check(results: Any = ..., total: Any = ..., tool_seconds: float = 1.0, **_: Any) -> Feedback:
    """Did the tool calls of different conversations overlap? Read from the tool spans of the results."""
    if names := missing(results=results, total=total):
        return Feedback(False, (fill_in(names),))
    runs = run_results(results)
    if runs is None or not isinstance(total, (int, float)):
        return Feedback(False, ("`results` should be the batch from run_concurrent and `total` its seconds.",))
    spans = sorted((s.start, s.end) for r in runs for s in r.spans if s.kind == "tool")
    if not spans:
        return Feedback(False, ("no tool was called: keep the tool's name and let the model use it.",))
    busy = covered_time(spans)
    summed = sum(end - start for start, end in spans)
    if busy >= 0.9 * summed:
        return Feedback(
            False,
            (
                f"your batch took {total:.2f} s and its {len(spans)} tool calls ran one after another "
                f"({summed:.2f} s of tool time, never two at once): the tool still blocks the event loop. "
                "Make it a plain def, or use await asyncio.sleep.",
            ),
        )
    return Feedback(
        True,
        (
            f"{len(spans)} tool calls adding up to {summed:.2f} s ran within {busy:.2f} s: "
            f"they overlapped, and the whole batch took {total:.2f} s.",
        ),
    )


def covered_time(spans: list[tuple[float, float]]) -> float:
    """How long at least one of the (sorted) spans was running."""
    covered, current_start, current_end = 0.0, spans[0][0], spans[0][1]
    for start, end in spans[1:]:
        if start > current_end:
            covered += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    return covered + current_end - current_start
