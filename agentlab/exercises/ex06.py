"""Exercise 06: a tool that waits without blocking the event loop.

Judged from the tool spans of the results: how long at least one tool was running (the union of the spans)
against ``tool_seconds`` × the number of calls. A tool that blocks runs its waits back to back, so that
union is about the sum, even when every call *started* before any of them blocked (``await asyncio.sleep(0)``
then ``time.sleep``): span overlap alone would be fooled.
"""

from __future__ import annotations

import json
from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import covered_time, fail, first_overlap, run_results, unfilled
from agentlab.records import RunResult

HINTS = [
    "`time.sleep` inside `async def` blocks the thread that runs every conversation.",
    "Either `await asyncio.sleep(...)` inside the async tool, or make it a plain `def` (the Agent runs it in a thread).",
    "With the fix, the four tool calls wait at the same time: the batch takes about one tool call's time, not four.",
]


def check(results: Any = ..., total: Any = ..., tool_seconds: Any = 1.0, **_: Any) -> Feedback:
    """Did the tools wait (each about ``tool_seconds``), at the same time, and still return a + b?"""
    if problem := unfilled(results=results, total=total):
        return fail(problem)
    runs = run_results(results)
    if runs is None or isinstance(total, bool) or not isinstance(total, (int, float)):
        return fail("`results` should be the batch from run_concurrent and `total` its seconds.")
    if not isinstance(tool_seconds, (int, float)) or tool_seconds <= 0:
        return fail("pass `tool_seconds`, how long one lookup waits, as the exercise's check cell does.")
    spans = [(s.start, s.end) for r in runs for s in r.spans if s.kind == "tool"]
    if not spans:
        return fail("no tool was called: keep the tool's name and let the model use it.")
    problem = (
        wrong_output(runs)
        or too_short(spans, float(tool_seconds))
        or runner_changed(runs)
        or still_blocking(spans, float(tool_seconds), float(total))
    )
    if problem:
        return fail(problem)
    busy, summed = covered_time(spans), sum(end - start for start, end in spans)
    return Feedback(
        True,
        (
            f"{len(spans)} tool calls of about {tool_seconds:.2f} s each ({summed:.2f} s in all) waited within "
            f"{busy:.2f} s: at the same time. The whole batch took {total:.2f} s.",
        ),
    )


def wrong_output(runs: list[RunResult]) -> str | None:
    """The tool must still return a + b: read each call's arguments and output from the transcripts."""
    for run in runs:
        calls = {m.get("call_id"): m for m in run.messages if m.get("type") == "function_call"}
        for item in run.messages:
            call = calls.get(item.get("call_id")) if item.get("type") == "function_call_output" else None
            if call is None:
                continue
            args = json.loads(call.get("arguments") or "{}")
            expected = float(args.get("a", 0)) + float(args.get("b", 0))
            try:
                got = float(item.get("output", ""))
            except ValueError:
                got = None
            if got != expected:
                return (
                    f"for {call.get('name')}(a={args.get('a')}, b={args.get('b')}) your tool returned "
                    f"{item.get('output')!r}: keep what it returns, a + b = {expected:g}."
                )
    return None


def too_short(spans: list[tuple[float, float]], tool_seconds: float) -> str | None:
    shortest = min(end - start for start, end in spans)
    if shortest >= 0.8 * tool_seconds:
        return None
    return (
        f"your tool waits only {shortest:.3f} s, not {tool_seconds:.2f} s: did you write `asyncio.sleep(...)` or "
        "`asyncio.to_thread(...)` without `await` (it then returns at once), or shorten the wait? A shorter sleep "
        "hides the problem instead of fixing it: keep the wait, and make it one that does not block."
    )


def runner_changed(runs: list[RunResult]) -> str | None:
    if len(runs) > 1 and first_overlap(runs) is None:
        return (
            "your conversations ran one after another, never two at once: keep `run_concurrent` as it was, and fix "
            "the tool instead."
        )
    return None


def still_blocking(spans: list[tuple[float, float]], tool_seconds: float, total: float) -> str | None:
    busy = covered_time(spans)
    if len(spans) < 2 or busy < 0.9 * len(spans) * tool_seconds:  # blocked waits cannot overlap: at least n × s
        return None
    return (
        f"your batch took {total:.2f} s: for {busy:.2f} s at least one of its {len(spans)} tool calls was running, "
        f"about {len(spans)} × {tool_seconds:.2f} s, so their waits ran one after another. The tool still blocks "
        "the event loop (even if every call started first, each `time.sleep` held the loop). Use "
        "`await asyncio.sleep(...)`, or make it a plain `def`."
    )
