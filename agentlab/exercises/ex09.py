"""Exercise 09: the time to first token of streamed conversations.

Judged from the results' own spans. Only a text delta arrives *during* a model call: ``model_start`` comes just
before the call starts, ``model_end`` just after it ends, tool events between calls. So a first-words time
strictly inside the answer turn (the last model call) shows that text streamed; and it must come well before
that call ends, where the last delta of an answer comes.
"""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fail, run_results, unfilled
from agentlab.records import RunResult

HINTS = [
    "Text arrives piece by piece only when the agent streams: `Agent(..., stream=True)`.",
    "Each piece reaches `on_event` as an event whose `kind` is `'text_delta'`; `event.time` says when it came.",
    "Keep only the first one of each conversation: `first_words.setdefault(index, event.time)`.",
]
EARLY = 0.9  # the first words must come before 90% of the answer turn has passed


def check(results: Any = ..., first_token: Any = ..., **_: Any) -> Feedback:
    """Did each conversation's first words arrive inside its answer turn, early, as a stream's do?"""
    if problem := unfilled(results=results, first_token=first_token):
        return fail(problem)
    runs = run_results(results)
    if runs is None:
        return fail("`results` should be the batch that run_concurrent returned.")
    if not isinstance(first_token, dict) or not all(isinstance(v, (int, float)) for v in first_token.values()):
        return fail("`first_token` should be a dict: conversation index → seconds from its start.")
    if not first_token:
        return fail(
            "`first_token` is empty: no text_delta reached `watch`. Make the agent stream (stream=True) "
            "and record each conversation's first text_delta."
        )
    absent = [i for i in range(len(runs)) if i not in first_token]
    if absent:
        return fail(f"`first_token` has no value for conversation(s) {absent}: record every one.")
    problems = [p for i, run in enumerate(runs) if (p := judge(i, run, float(first_token[i])))]
    if problems:
        return fail(*problems[:3])
    lines = [describe(i, run, float(first_token[i])) for i, run in enumerate(runs)]
    return Feedback(True, (*lines, "Each answer began to appear while the model was still writing it."))


def answer_turn(run: RunResult) -> tuple[float, float]:
    """When the last model call started and ended, in seconds from the conversation's start."""
    last = [span for span in run.spans if span.kind == "model"][-1]
    return last.start - run.started_at, last.end - run.started_at


def judge(index: int, run: RunResult, seconds: float) -> str | None:
    start, end = answer_turn(run)
    said = f"conversation {index}: your first words came at {seconds:.2f} s"
    if seconds < start - 0.02 * (end - start):
        return f"{said}, before its answer turn began ({start:.2f} s): that is an earlier event, not its first words."
    if seconds <= start:
        return (
            f"{said}, the moment its answer turn began ({start:.2f} s), before any text: that is model_start. "
            "Keep the time of the first text_delta."
        )
    if seconds >= end:
        return (
            f"{said}, when its answer turn had already ended ({end:.2f} s): text that comes only then came all "
            "at once (model_end). Make the agent stream (stream=True) and keep its first text_delta."
        )
    if seconds > start + EARLY * (end - start):
        return (
            f"{said}, {(seconds - start) / (end - start):.0%} into its answer turn, when the answer was almost "
            "written: is that the last text_delta? Keep only the first of each conversation (setdefault)."
        )
    return None


def describe(index: int, run: RunResult, seconds: float) -> str:
    start, end = answer_turn(run)
    share = (seconds - start) / (end - start) if end > start else 0.0
    return f"conversation {index}: first words {seconds:.2f} s after its start, {share:.0%} into its answer turn."
