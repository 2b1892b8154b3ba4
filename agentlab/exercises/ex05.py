"""Exercise 05: a bounded batch with a timeout: at most k at once, the hung prompt cut, the rest kept in order."""

from __future__ import annotations

from typing import Any

from agentlab.errors import BackendError
from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fail, outcomes_problem, peak, settle, unanswered_problem
from agentlab.records import RunResult

HINTS = [
    "`run_bounded(agent, prompts, max_concurrency=..., timeout=...)` runs at most k at once and keeps every outcome.",
    "The hung prompt needs a deadline: `timeout=2` seconds per conversation, longer than a healthy one (1 s).",
    "One line: await `run_bounded` on the agent and the prompts, at most 4 at once, with the deadline of hint 2, "
    "and keep what it returns in `outcomes`.",
]


def check(prompts: Any = ..., outcomes: Any = ..., max_concurrency: int = 4, **_: Any) -> Feedback:
    if problem := outcomes_problem(prompts, outcomes, "run_bounded"):
        return fail(problem)
    settled = [settle(o) for o in outcomes]
    hung = [i for i, p in enumerate(prompts) if "[fault=hang]" in str(p)]
    problem = (
        unanswered_problem(prompts, outcomes, "run_bounded", None)
        or bound_problem([v for s, v in settled if s == "fulfilled"], max_concurrency, too_few=False)
        or timeout_problem(settled, hung)
        or bound_problem([v for s, v in settled if s == "fulfilled"], max_concurrency, too_few=True)
    )
    if problem:
        return fail(problem)
    done = [v for s, v in settled if s == "fulfilled"]
    return Feedback(
        True,
        (
            f"{len(outcomes)} outcomes in order; the hung prompt {hung} timed out; at most "
            f"{peak((r.started_at, r.ended_at) for r in done)} ran at once (limit {max_concurrency}).",
        ),
    )


def timeout_problem(settled: list[tuple[str, Any]], hung: list[int]) -> str | None:
    """Which deadline went wrong: none (the client gave up), too short (healthy ones cut), or other failures."""
    cut = [i for i, (s, v) in enumerate(settled) if s == "rejected" and isinstance(v, TimeoutError)]
    gave_up = [i for i, (s, v) in enumerate(settled) if s == "rejected" and isinstance(v, BackendError)]
    healthy_cut = [i for i in cut if i not in hung]
    if healthy_cut:
        seconds = getattr(settled[healthy_cut[0]][1], "timeout", None)
        yours = f" ({seconds:g} s)" if isinstance(seconds, (int, float)) else ""
        return (
            f"your timeout{yours} also cut {len(healthy_cut)} healthy conversation(s), {healthy_cut}: it is shorter "
            "than a healthy conversation takes (1 s here). Give each one more time than that, say timeout=2."
        )
    if any(i in gave_up for i in hung):
        return (
            f"the hung prompt {hung} was not cut by a deadline of yours: it failed only when the client gave up "
            "waiting (after its own time-out and retries, about 25 s). Pass timeout=2 to run_bounded, so that a "
            "hung conversation becomes Rejected(ConversationTimeout) after 2 s."
        )
    missed = [i for i in hung if i not in cut]
    if missed:
        return f"the prompt that hangs, {missed}, should end as a timeout: pass timeout= to run_bounded."
    others = [i for i, (s, _) in enumerate(settled) if s == "rejected" and i not in hung]
    if others:
        return f"conversations {others} failed, though they should have finished: look at their reasons."
    return None


def bound_problem(done: list[RunResult], max_concurrency: Any, *, too_few: bool) -> str | None:
    """Too many at once (checked first: it can also make healthy ones late), or, with ``too_few``, fewer than allowed."""
    highest = peak((r.started_at, r.ended_at) for r in done)
    if highest > max_concurrency and not too_few:
        return (
            f"up to {highest} conversations ran at the same time; the limit is {max_concurrency}: "
            f"pass max_concurrency={max_concurrency}."
        )
    if too_few and isinstance(max_concurrency, int) and highest < max_concurrency and len(done) >= 2 * max_concurrency:
        return (
            f"at most {highest} conversation(s) ran at once, though {max_concurrency} may: the batch took longer than "
            f"it needed. Pass max_concurrency={max_concurrency}, the limit itself."
        )
    return None
