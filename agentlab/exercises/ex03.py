"""Exercise 03: settle every outcome, keep them in order, and list the failures."""

from __future__ import annotations

import inspect
from typing import Any

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fill_in, first_user_text, missing, not_awaited
from agentlab.results import Fulfilled, Rejected, RunResult

HINTS = [
    "Plain `asyncio.gather` raises at the first failure and loses every other result. You want one outcome per "
    "prompt, failures included.",
    "`outcomes = await run_settled(agent, prompts)` gives one `Fulfilled` or `Rejected` per prompt, in order; "
    "each has a `.status` of 'fulfilled' or 'rejected'.",
    "`enumerate(outcomes)` gives (index, outcome) pairs: keep the index when the status is 'rejected', "
    "with a list comprehension.",
]


def check(prompts: Any = ..., outcomes: Any = ..., failed: Any = ..., **_: Any) -> Feedback:
    """N outcomes for N prompts, in input order, and ``failed`` = the indices of the prompts with a fault marker."""
    if names := missing(prompts=prompts, outcomes=outcomes, failed=failed):
        return Feedback(False, (fill_in(names),))
    if inspect.isawaitable(outcomes) or not_awaited(outcomes):
        return Feedback(
            False,
            (
                "`outcomes` holds something not yet awaited: write `await run_settled(agent, prompts)` "
                "(or `await asyncio.gather(...)`).",
            ),
        )
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        return Feedback(False, ("pass the exercise's list of `prompts` to check(...) as well.",))
    if not isinstance(outcomes, (list, tuple)):
        return Feedback(
            False,
            (
                f"`outcomes` should be the list that `await run_settled(agent, prompts)` returns; it "
                f"is {describe(outcomes)}.",
            ),
        )
    if len(outcomes) != len(prompts):
        return Feedback(
            False,
            (
                f"you have {len(outcomes)} outcomes for {len(prompts)} prompts: keep one per prompt, failures included "
                "(run_settled, or gather with return_exceptions=True).",
            ),
        )
    statuses: list[str] = []
    for index, (prompt, outcome) in enumerate(zip(prompts, outcomes, strict=True)):
        value = outcome.value if isinstance(outcome, Fulfilled) else outcome
        if isinstance(outcome, Rejected) or isinstance(outcome, BaseException):
            statuses.append("rejected")
        elif isinstance(value, RunResult):
            if first_user_text(value.messages) != prompt:
                return Feedback(
                    False,
                    (
                        f"outcome {index} answers another prompt: keep the outcomes in the order of "
                        "the prompts (do not sort them by finishing time).",
                    ),
                )
            statuses.append("fulfilled")
        else:
            return Feedback(
                False,
                (
                    f"outcome {index} is {describe(outcome)}: expected a Fulfilled or Rejected (from run_settled), or a "
                    "RunResult or an exception (from gather with return_exceptions=True).",
                ),
            )
    expected = [i for i, p in enumerate(prompts) if "[fault=" in p]
    actual = [i for i, s in enumerate(statuses) if s == "rejected"]
    if actual != expected:
        return Feedback(
            False,
            (
                f"the outcomes say that {actual} failed, but the prompts with a fault marker are "
                f"{expected}: run the exercise's prompts unchanged.",
            ),
        )
    if not isinstance(failed, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in failed):
        hint = (
            " (the prompts themselves, not their indices?)"
            if isinstance(failed, (list, tuple)) and any(isinstance(i, str) for i in failed)
            else ""
        )
        return Feedback(
            False,
            (f"`failed` should be a list of indices (whole numbers such as 0 or 3); it is {describe(failed)}{hint}.",),
        )
    if sorted(failed) != expected:
        return Feedback(
            False,
            (
                f"your `failed` is {list(failed)}, but the failed prompts are at indices {expected}: go through "
                "`enumerate(outcomes)` and keep the index of each outcome whose status is 'rejected'.",
            ),
        )
    kept = len(prompts) - len(expected)
    return Feedback(
        True,
        (
            f"{len(outcomes)} outcomes for {len(prompts)} prompts, in input order; failed: {expected}.",
            f"Nothing was lost: the other {kept} answers are all there.",
        ),
    )
