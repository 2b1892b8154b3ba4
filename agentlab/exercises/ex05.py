"""Exercise 05: a bounded batch with a timeout."""

from __future__ import annotations

from typing import Any

from agentlab.errors import ConversationTimeout
from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fill_in, first_user_text, missing
from agentlab.results import Fulfilled, Rejected

HINTS = [
    "`run_bounded(agent, prompts, max_concurrency=..., timeout=...)` runs at most k at once and keeps every outcome.",
    "The hung prompt needs a deadline: `timeout=2` seconds per conversation.",
    "`outcomes = await run_bounded(agent, prompts, max_concurrency=4, timeout=2)`.",
]


def check(prompts: Any = ..., outcomes: Any = ..., max_concurrency: int = 4, **_: Any) -> Feedback:
    if names := missing(outcomes=outcomes):
        return Feedback(False, (fill_in(names),))
    if not isinstance(prompts, list) or not isinstance(outcomes, list) or len(outcomes) != len(prompts):
        return Feedback(False, ("keep one outcome per prompt, in order: run_bounded returns exactly that.",))
    hung = [i for i, p in enumerate(prompts) if "[fault=hang]" in str(p)]
    timeouts = [
        i for i, o in enumerate(outcomes) if isinstance(o, Rejected) and isinstance(o.reason, ConversationTimeout)
    ]
    if timeouts != hung:
        return Feedback(
            False,
            (f"the prompts that hang are {hung}, but the timed-out outcomes are {timeouts}: did you pass timeout=?",),
        )
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Fulfilled) and first_user_text(outcome.value.messages) != prompts[index]:
            return Feedback(
                False,
                (
                    f"outcome {index} answers another prompt: keep the outcomes in the order of "
                    "`prompts`, as run_bounded returns them (do not sort them).",
                ),
            )
    fulfilled = [o.value for o in outcomes if isinstance(o, Fulfilled)]
    if len(fulfilled) != len(prompts) - len(hung):
        return Feedback(False, ("some conversations that should have finished did not: look at their reasons.",))
    events = sorted(
        [(r.started_at, 1) for r in fulfilled] + [(r.ended_at, -1) for r in fulfilled], key=lambda e: (e[0], e[1])
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    if peak > max_concurrency:
        return Feedback(
            False,
            (
                f"up to {peak} conversations ran at the same time; the limit is {max_concurrency}: "
                "pass max_concurrency=.",
            ),
        )
    return Feedback(
        True,
        (
            f"{len(outcomes)} outcomes in order; the hung prompt {hung} timed out; at most {peak} ran "
            f"at once (limit {max_concurrency}).",
        ),
    )
