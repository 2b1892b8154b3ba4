"""Small pieces shared by the exercise checks.

Every verdict is read from the answers' own time stamps (``started_at``/``ended_at`` of the results, the
spans of their tool calls), with a slack that is a share of the conversations' durations, never a fixed
number of seconds: a check says the same at full speed and at ``AGENTLAB_TIME_SCALE=0.05``.
"""

from __future__ import annotations

import inspect
import json
import urllib.request
from collections.abc import Iterable
from typing import Any

from agentlab.exercises import Feedback
from agentlab.records import Fulfilled, Rejected, RunResult


def fail(*messages: str) -> Feedback:
    return Feedback(False, messages)


def missing(**answers: Any) -> list[str]:
    """The names of answers that are still placeholders (``...`` or ``None``)."""
    return [name for name, value in answers.items() if value is ... or value is None]


def fill_in(names: list[str]) -> str:
    return f"fill in {', '.join(f'`{n}`' for n in names)} first: replace the `...` in the TODO cell"


def unfilled(**answers: Any) -> str | None:
    """ "Fill in" for answers still ``...``; for one that is None, what gives None (it is no placeholder: the
    exercises' placeholders are ``...``, so a None came from the learner's own line)."""
    if names := [name for name, value in answers.items() if value is ...]:
        return fill_in(names)
    if names := [name for name, value in answers.items() if value is None]:
        return (
            f"`{names[0]}` is None: the line that set it gave back nothing (`list.append(...)`, `plt.show()` and a "
            "function without `return` all give None). Keep the value itself."
        )
    return None


def not_awaited(results: Any) -> bool:
    """A list of coroutines or tasks, or a single one (``gather(...)`` without ``await`` is a Future)."""
    if inspect.isawaitable(results):
        return True
    return isinstance(results, (list, tuple)) and any(inspect.isawaitable(r) for r in results)


def outcomes_problem(prompts: Any, outcomes: Any, runner: str, **answers: Any) -> str | None:
    """What is wrong with a batch's ``outcomes`` before they can be judged: still a placeholder (it or one of
    ``answers``), never awaited, or not one outcome per prompt. ``runner`` names the call that makes them."""
    if problem := unfilled(outcomes=outcomes, **answers):
        return problem
    if not_awaited(outcomes):
        return f"`outcomes` was never awaited: write `outcomes = await {runner}(...)`."
    if not isinstance(prompts, list) or not isinstance(outcomes, (list, tuple)) or len(outcomes) != len(prompts):
        return f"keep one outcome per prompt, in order: {runner} returns exactly that."
    return None


def run_results(results: Any) -> list[RunResult] | None:
    if isinstance(results, (list, tuple)) and results and all(isinstance(r, RunResult) for r in results):
        return list(results)
    return None


def first_user_text(messages: list[dict[str, Any]]) -> Any:
    return messages[0].get("content") if messages else None


def describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {len(value)} item(s) of type {', '.join(kinds) or '-'}"
    return f"a {type(value).__name__}: {value!r:.60}"


def order_problem(runs: list[RunResult], prompts: Any, order_hint: str) -> str | None:
    """What is wrong with the results' count or order against ``prompts``, or None when they match."""
    if not isinstance(prompts, list):
        return None
    if len(runs) != len(prompts):
        return f"you have {len(runs)} results for {len(prompts)} prompts: run each prompt once."
    if [first_user_text(r.messages) for r in runs] != prompts:
        return f"the results are not in the order of the prompts: {order_hint}"
    return None


def wall_time(runs: list[RunResult]) -> float:
    """From the first start to the last end, read from the results themselves."""
    return max(r.ended_at for r in runs) - min(r.started_at for r in runs)


def first_overlap(runs: list[RunResult]) -> tuple[int, int] | None:
    """Two conversations (indices) of which the later one started before the earlier one ended, or None.

    The slack is 1% of the shorter conversation: awaited one after another, the next one starts strictly after.
    """
    order = sorted(range(len(runs)), key=lambda i: runs[i].started_at)
    for before, after in zip(order, order[1:], strict=False):
        slack = 0.01 * min(runs[before].duration, runs[after].duration)
        if runs[after].started_at < runs[before].ended_at - slack:
            return before, after
    return None


def peak(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals running at one moment (one that ends as another starts does not count twice)."""
    events = sorted((t, step) for start, end in intervals for t, step in ((start, 1), (end, -1)))
    running = highest = 0
    for _, step in events:
        running += step
        highest = max(highest, running)
    return highest


def covered_time(spans: list[tuple[float, float]]) -> float:
    """How long at least one of the spans was running."""
    covered, current_start, current_end = 0.0, None, 0.0
    for start, end in sorted(spans):
        if current_start is None or start > current_end:
            if current_start is not None:
                covered += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    return covered + (current_end - current_start if current_start is not None else 0.0)


def unanswered_problem(prompts: list[Any], outcomes: Any, runner: str, why: str | None) -> str | None:
    """The first outcome that is not its own prompt's answer: a failure (unless ``why`` is None: failures
    allowed), something that is no outcome at all, or another prompt's answer; None when all are in order."""
    for index, outcome in enumerate(outcomes):
        status, value = settle(outcome)
        if status == "rejected" and why is not None:
            return f"conversation {index} failed ({type(value).__name__}: {value}): {why}"
        if status == "other":
            return f"outcome {index} is {describe(value)}, neither a result nor a failure: keep what {runner} returns."
        if status == "fulfilled" and first_user_text(value.messages) != prompts[index]:
            return (
                f"outcome {index} answers another prompt: keep the outcomes in the order of `prompts`, as "
                f"{runner} returns them (do not sort or filter them)."
            )
    return None


def settle(outcome: Any) -> tuple[str, Any]:
    """``("fulfilled", RunResult)``, ``("rejected", exception)``, or ``("other", value)``.

    Accepts what ``run_settled``/``run_bounded`` return and what ``gather(..., return_exceptions=True)`` does.
    """
    if isinstance(outcome, Fulfilled) and isinstance(outcome.value, RunResult):
        return "fulfilled", outcome.value
    if isinstance(outcome, RunResult):
        return "fulfilled", outcome
    if isinstance(outcome, Rejected):
        return "rejected", outcome.reason
    if isinstance(outcome, BaseException):
        return "rejected", outcome
    return "other", outcome


def server_json(server: Any, path: str) -> Any:
    """``GET`` ``path`` (``/offline/stats``, ``/v1/batches``) of the server the exercise started, as JSON."""
    with urllib.request.urlopen(server.url + path, timeout=10) as answer:
        return json.load(answer)


def met_429s(settled: list[tuple[str, Any]]) -> str | None:
    """The 429s a batch met, said in words: conversations refused with one, or else conversations whose budget
    had to send a call again (a "retry" wait span); None when it met none."""
    refused = [i for i, (s, v) in enumerate(settled) if s == "rejected" and getattr(v, "status_code", 0) == 429]
    retried = [i for i, (s, v) in enumerate(settled) if s == "fulfilled" and any(x.name == "retry" for x in v.spans)]
    if refused:
        return f"{len(refused)} were refused with 429 ({', '.join(map(str, refused[:5]))}…)"
    if retried:
        return f"{len(retried)} had calls refused and sent again ({', '.join(map(str, retried[:5]))}…)"
    return None
