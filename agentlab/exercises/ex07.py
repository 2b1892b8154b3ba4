"""Exercise 07: a batch under a rate-limit budget: no 429s, the limit used, every outcome in order."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import outcomes_problem, settle, unanswered_problem
from agentlab.limits import offline_minute

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
        return Feedback(False, (problem,))
    settled = [settle(o) for o in outcomes]
    problem = (
        rate_limit_problem(server)
        or unanswered_problem(prompts, outcomes, "run_bounded", "under a budget none should.")
        or share_problem(settled, tokens_per_minute)
    )
    if problem:
        return Feedback(False, (problem,))
    return Feedback(True, (f"{len(outcomes)} outcomes in order, no 429 from the server, and the limit well used.",))


def rate_limit_problem(server: Any) -> str | None:
    refused = count_429s(server)
    if refused:
        return (
            f"the server answered {refused} request(s) with 429 (rate limit reached): the batch went faster than the "
            "limit allows. max_concurrency caps how many run at once, not how many per minute: pass "
            "requests_per_minute= and tokens_per_minute= to run_bounded (or budget=Budget()). The count is since the "
            "server started: run the first cell again for a fresh server."
        )
    return None


def share_problem(settled: list[tuple[str, Any]], tokens_per_minute: Any) -> str | None:
    runs = [value for status, value in settled if status == "fulfilled"]
    if not runs or not isinstance(tokens_per_minute, (int, float)) or tokens_per_minute <= 0:
        return None
    tokens = sum(r.usage.input_tokens + r.usage.output_tokens for r in runs)
    span = max(r.ended_at for r in runs) - min(r.started_at for r in runs)
    share = tokens / max(span, 1e-9) * offline_minute() / tokens_per_minute
    if share < LOWEST_SHARE:
        return (
            f"no 429s, but the batch used only {share:.0%} of the {tokens_per_minute:g} tokens per minute the server "
            "allows: a budget smaller than the server's limit (or a small max_concurrency) leaves most of it unspent. "
            "Give run_bounded the server's own numbers."
        )
    return None


def count_429s(server: Any) -> int:
    """429s the offline server at ``server`` (an OfflineServer, or its URL) has sent since it started."""
    url = getattr(server, "url", server)
    if not isinstance(url, str):
        return 0
    with urllib.request.urlopen(url.removesuffix("/v1") + "/offline/stats", timeout=10) as answer:
        return int(json.load(answer)["statuses"].get("429", 0))
