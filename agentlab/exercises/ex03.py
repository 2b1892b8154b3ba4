"""Exercise 03: settle every outcome, keep them in order, list the failures, and close the client you made."""

from __future__ import annotations

from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fail, not_awaited, settle, unanswered_problem, unfilled

HINTS = [
    "Plain `asyncio.gather` raises at the first failure and loses every other result. You want one outcome per "
    "prompt, failures included.",
    "`outcomes = await run_settled(agent, prompts)` gives one `Fulfilled` or `Rejected` per prompt, in order; "
    "each has a `.status` of 'fulfilled' or 'rejected'.",
    "`enumerate(outcomes)` gives (index, outcome) pairs: keep the index when the status is 'rejected', "
    "with a list comprehension. Then `await agent.client.close()`: you made that client.",
]


def check(prompts: Any = ..., outcomes: Any = ..., failed: Any = ..., client: Any = None, **_: Any) -> Feedback:
    """N outcomes for N prompts, in input order, ``failed`` = the indices of the prompts with a fault marker.

    ``client``, when given, must be closed: the exercise made it, so the exercise closes it.
    """
    if problem := unfilled(prompts=prompts, outcomes=outcomes, failed=failed):
        return fail(problem)
    if problem := shape_problem(prompts, outcomes):
        return fail(problem)
    expected = [i for i, p in enumerate(prompts) if "[fault=" in p]
    problem = outcome_problem(prompts, list(outcomes), expected) or failed_problem(failed, expected, len(prompts))
    if problem is None and client is not None and not is_closed(client):
        problem = (
            "every outcome is right, but the client is still open: you made it with make_client(...), so close it "
            "with `await agent.client.close()` when the batch is done (lesson 03)."
        )
    if problem:
        return fail(problem)
    kept = len(prompts) - len(expected)
    closed = " The client you made is closed." if client is not None else ""
    return Feedback(
        True,
        (
            f"{len(outcomes)} outcomes for {len(prompts)} prompts, in input order; failed: {expected}.",
            f"Nothing was lost: the other {kept} answers are all there.{closed}",
        ),
    )


def shape_problem(prompts: Any, outcomes: Any) -> str | None:
    """Awaited, a list of one outcome per prompt: what is wrong with the shape of the answer, or None."""
    if not_awaited(outcomes):
        return (
            "`outcomes` holds something not yet awaited: write `await run_settled(agent, prompts)` "
            "(or `await asyncio.gather(...)`)."
        )
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        return "pass the exercise's list of `prompts` to check(...) as well."
    if not isinstance(outcomes, (list, tuple)):
        return (
            f"`outcomes` should be the list that `await run_settled(agent, prompts)` returns; it "
            f"is {describe(outcomes)}."
        )
    if len(outcomes) != len(prompts):
        return (
            f"you have {len(outcomes)} outcomes for {len(prompts)} prompts: keep one per prompt, failures included "
            "(run_settled, or gather with return_exceptions=True)."
        )
    return None


def outcome_problem(prompts: list[str], outcomes: list[Any], expected: list[int]) -> str | None:
    if problem := unanswered_problem(prompts, outcomes, "run_settled (or gather with return_exceptions=True)", None):
        return problem
    actual = [i for i, outcome in enumerate(outcomes) if settle(outcome)[0] == "rejected"]
    if actual != expected:
        return (
            f"the outcomes say that {actual} failed, but the prompts with a fault marker are "
            f"{expected}: run the exercise's prompts unchanged."
        )
    return None


def failed_problem(failed: Any, expected: list[int], n: int) -> str | None:
    if not isinstance(failed, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in failed):
        hint = (
            " (the prompts themselves, not their indices?)"
            if isinstance(failed, (list, tuple)) and any(isinstance(i, str) for i in failed)
            else ""
        )
        return f"`failed` should be a list of indices (whole numbers such as 0 or 3); it is {describe(failed)}{hint}."
    mine = sorted(failed)
    if mine == expected:
        return None
    if mine == [i + 1 for i in expected]:
        return (
            f"your `failed` is {list(failed)}, one more than each failed index {expected}: indices start at 0 "
            "(`enumerate(outcomes)`, not `enumerate(outcomes, 1)`)."
        )
    if mine == [i for i in range(n) if i not in expected]:
        return (
            f"your `failed` is {list(failed)}: those are the conversations that succeeded. Keep the indices whose "
            "status is 'rejected'."
        )
    return (
        f"your `failed` is {list(failed)}, but the failed prompts are at indices {expected}: go through "
        "`enumerate(outcomes)` and keep the index of each outcome whose status is 'rejected'."
    )


def is_closed(client: Any) -> bool:
    closed = getattr(client, "is_closed", None)
    return bool(closed()) if callable(closed) else True
