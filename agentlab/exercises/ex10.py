"""Exercise 10: conversations over the workers of a Dask cluster, all of them under one rate limit.

Judged from the learner's own batch, as exercise 07 is: it ran on the cluster (``run_distributed``), gave one
outcome per prompt in order, met no 429 (the exercise's client does not retry, so each 429 is a refused
conversation or a retry of the budget's, both in the outcomes), and spent most of the server's tokens per minute.
"""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fail, met_429s, outcomes_problem, settle, unanswered_problem
from agentlab.exercises.ex07 import LOWEST_SHARE, used_share

HINTS = [
    "A `Budget` belongs to one process: passed to `run_distributed`, it is copied to each worker, and each copy "
    "spends the whole limit. Four workers, four times the limit.",
    "`agentlab.cluster.SharedBudget(client, requests_per_minute=..., tokens_per_minute=...)` is one budget for "
    "the whole cluster, kept by the Dask scheduler: every worker spends from it.",
    "Give it the server's own numbers (RPM, TPM and its MINUTE above), not a share of them: the shared budget "
    "already divides them between the workers as they need. `run_distributed(..., requests_per_minute=RPM, tokens_per_minute=TPM)` "
    "is the same in one line.",
]


def check(
    prompts: Any = ..., outcomes: Any = ..., server: Any = None, tokens_per_minute: Any = None, **_: Any
) -> Feedback:
    if problem := outcomes_problem(prompts, outcomes, "run_distributed"):
        return fail(problem)
    report = getattr(outcomes, "report", None)
    if report is None:
        return fail(
            "keep the batch as run_distributed returns it: one outcome per prompt, in order, with the .report that "
            "says where it ran. Do not sort or filter it."
        )
    if getattr(report, "runner", None) != "run_distributed":
        return fail(
            f"these outcomes come from {getattr(report, 'runner', 'something else')}, in this one process: run them "
            "on the cluster's workers with `await run_distributed(agent, prompts, client, ...)`."
        )
    settled = [settle(o) for o in outcomes]
    share = used_share([v for s, v in settled if s == "fulfilled"], tokens_per_minute, server)
    problem = (
        rate_limit_problem(settled)
        or unanswered_problem(prompts, outcomes, "run_distributed", "under a shared budget none should.")
        or share_problem(share, tokens_per_minute)
    )
    if problem:
        return fail(problem)
    used = (
        f", spending tokens at {share:.0%} of the {tokens_per_minute:g} per minute the server allows" if share else ""
    )
    return Feedback(True, (f"{len(outcomes)} outcomes in order from the workers, none refused with 429{used}.",))


def rate_limit_problem(settled: list[tuple[str, Any]]) -> str | None:
    what = met_429s(settled)
    if what is None:
        return None
    return (
        f"of your conversations, {what}: together the workers went faster than the limit. A Budget (or no budget) "
        "is per process, so each worker spent the whole limit; or the budget's numbers were above the server's. "
        "Share one budget between the workers: SharedBudget(client, ...) with the server's own numbers."
    )


def share_problem(share: float | None, tokens_per_minute: Any) -> str | None:
    if share is None or share >= LOWEST_SHARE:
        return None
    return (
        f"no 429s, but the batch spent tokens at only {share:.0%} of the {tokens_per_minute:g} per minute the server "
        "allows: a shared budget is the whole cluster's, so give it the server's whole limit, not a worker's share."
    )
