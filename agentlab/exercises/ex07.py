"""Exercise 07: a batch under a rate-limit budget: no 429s, the limit used, every outcome in order.

Judged from the learner's own outcomes, not from the server's counters: a naive try before, on the same
server, is not this batch. The exercise's client has its retries off, so that every 429 this batch met is one
of its outcomes (a Rejected whose status is 429) instead of a retry nobody sees.
"""

from __future__ import annotations

from typing import Any

from agentlab.budget import offline_minute
from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fail, met_429s, outcomes_problem, server_json, settle, unanswered_problem

HINTS = [
    "`max_concurrency` caps how many conversations run at once, not how many requests or tokens go out per minute: "
    "the server's limit is per minute.",
    "`run_bounded` also takes `requests_per_minute=` and `tokens_per_minute=`: give it the server's numbers "
    "(they are printed above), or `budget=Budget()` to learn them from the x-ratelimit-* headers.",
    "It is still one `await run_bounded(...)` line: keep the agent and the prompts, and add the two per-minute "
    "numbers as keywords. The budget then waits before each call instead of the server refusing it.",
]

LOWEST_SHARE = 0.6  # of the tokens per minute the server allows: a budget spends about all of it


def check(
    prompts: Any = ..., outcomes: Any = ..., server: Any = None, tokens_per_minute: Any = None, **_: Any
) -> Feedback:
    if problem := outcomes_problem(prompts, outcomes, "run_bounded"):
        return fail(problem)
    settled = [settle(o) for o in outcomes]
    share = used_share([v for s, v in settled if s == "fulfilled"], tokens_per_minute, server)
    problem = (
        rate_limit_problem(settled)
        or unanswered_problem(prompts, outcomes, "run_bounded", "under a budget none should.")
        or share_problem(share, tokens_per_minute)
    )
    if problem:
        return fail(problem)
    used = (
        f", spending tokens at {share:.0%} of the {tokens_per_minute:g} per minute the server allows (its bucket "
        "starts with a whole minute's worth, so a batch on a fresh server can pass 100%)"
        if share is not None
        else ""
    )
    return Feedback(True, (f"{len(outcomes)} outcomes in order, none refused with 429{used}.",))


def rate_limit_problem(settled: list[tuple[str, Any]]) -> str | None:
    """429s this batch met: conversations refused, and calls its budget had to send again (their retry waits)."""
    what = met_429s(settled)
    if what is None:
        return None
    return (
        f"of your conversations, {what}: the batch went faster "
        "than the limit allows. max_concurrency caps how many run at once, not how many per minute: pass "
        "requests_per_minute= and tokens_per_minute= to run_bounded (or budget=Budget())."
    )


def used_share(runs: list[Any], tokens_per_minute: Any, server: Any) -> float | None:
    """The batch's tokens per minute (input and output, over its own span) as a share of the server's limit."""
    if not runs or isinstance(tokens_per_minute, bool) or not isinstance(tokens_per_minute, (int, float)):
        return None
    window = server_json(server, "/offline/stats").get("ratelimit", {}) if server is not None else {}
    minute = float(window.get("window_seconds") or offline_minute())
    tokens = sum(r.usage.input_tokens + r.usage.output_tokens for r in runs)
    span = max(r.ended_at for r in runs) - min(r.started_at for r in runs)
    return float(tokens / max(span, 1e-9) * minute / max(tokens_per_minute, 1e-9))


def share_problem(share: float | None, tokens_per_minute: Any) -> str | None:
    if share is None or share >= LOWEST_SHARE:
        return None
    return (
        f"no 429s, but the batch spent tokens at only {share:.0%} of the {tokens_per_minute:g} per minute the server "
        "allows: a budget smaller than the server's limit (or a small max_concurrency) leaves most of it unspent. "
        "Give run_bounded the server's own numbers."
    )
