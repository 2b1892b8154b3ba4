"""Exercise 09: the time to first token of streamed conversations.

Judged from the results' own spans: each conversation's first words must arrive inside its answer turn (the
last model call), well before that call ends. Text that comes all at once arrives when the call ends, which is
what a conversation that does not stream shows; a time before the answer turn started is not the first text.
"""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fill_in, missing, run_results
from agentlab.records import RunResult

HINTS = [
    "Text arrives piece by piece only when the agent streams: `Agent(..., stream=True)`.",
    "Each piece reaches `on_event` as an event whose `kind` is `'text_delta'`; `event.time` says when it came.",
    "Keep only the first one of each conversation: `first_words.setdefault(index, event.time)`.",
]
EARLY = 0.9  # the first words must come before 90% of the answer turn has passed


def check(results: Any = ..., first_token: Any = ..., **_: Any) -> Feedback:
    """Did each conversation's first words arrive early in its answer turn, as a stream's do?"""
    if names := missing(results=results, first_token=first_token):
        return Feedback(False, (fill_in(names),))
    runs = run_results(results)
    if runs is None:
        return Feedback(False, ("`results` should be the batch that run_concurrent returned.",))
    if not isinstance(first_token, dict) or not all(isinstance(v, (int, float)) for v in first_token.values()):
        return Feedback(False, ("`first_token` should be a dict: conversation index → seconds from its start.",))
    if not first_token:
        return Feedback(
            False,
            (
                "`first_token` is empty: no text_delta reached `watch`. Make the agent stream (stream=True) "
                "and record each conversation's first text_delta.",
            ),
        )
    absent = [i for i in range(len(runs)) if i not in first_token]
    if absent:
        return Feedback(False, (f"`first_token` has no value for conversation(s) {absent}: record every one.",))
    problems = [p for i, run in enumerate(runs) if (p := judge(i, run, float(first_token[i])))]
    if problems:
        return Feedback(False, tuple(problems[:3]))
    lines = [describe(i, run, float(first_token[i])) for i, run in enumerate(runs)]
    return Feedback(True, (*lines, "Each answer began to appear while the model was still writing it."))


def answer_turn(run: RunResult) -> tuple[float, float]:
    """When the last model call started and ended, in seconds from the conversation's start."""
    last = [span for span in run.spans if span.kind == "model"][-1]
    return last.start - run.started_at, last.end - run.started_at


def judge(index: int, run: RunResult, seconds: float) -> str | None:
    start, end = answer_turn(run)
    slack = 0.02 * (end - start)
    if seconds < start - slack:
        return (
            f"conversation {index}: {seconds:.2f} s is before its answer turn started ({start:.2f} s): record "
            "the first text_delta, not another event."
        )
    if seconds > start + EARLY * (end - start):
        return (
            f"conversation {index}: its first words came at {seconds:.2f} s, when the answer turn was ending "
            f"({end:.2f} s): that is text arriving all at once. Did the agent stream?"
        )
    return None


def describe(index: int, run: RunResult, seconds: float) -> str:
    start, end = answer_turn(run)
    share = (seconds - start) / (end - start) if end > start else 0.0
    return f"conversation {index}: first words {seconds:.2f} s after its start, {share:.0%} into its answer turn."
