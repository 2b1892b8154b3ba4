"""Exercise 08: a batched run that died in round 2, resumed from its state file, and what batching saved.

Resumption is judged by what the exercise's server received: every batch of these conversations (the same
``agentlab_run`` in its metadata), counted by round. A run that went on from the state file sends each round
once; one that started again (no state file, another one, or the file deleted) sends round 1 a second time.
The saving is judged at the exercise's own price, whose batch discount is not one half: at one half, what
batching saved is also what the batched run cost, and that mistake could not be told apart.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from agentlab.batch import BatchedReport, Price, cost_of
from agentlab.exercises import Feedback
from agentlab.exercises._helpers import fail, outcomes_problem, server_json, unanswered_problem

HINTS = [
    "`run_batched(agent, prompts, state_path=...)` reads the state file first: with the same agent, prompts and "
    "path, it goes on where the run stopped, and sends no turn twice.",
    "The report of a batched run has `report.cost`: `cost.live` is what the same tokens cost sent live, "
    "`cost.batched` what they cost through the Batch API. The saving is the difference, in dollars.",
    "The first line awaits `run_batched` as the crashed cell did, without the crash: the same agent, prompts, "
    "`state_path=STATE` and `prices=PRICES`; the second takes the batched cost from the live one, both in "
    "`outcomes.report.cost`.",
]


def check(
    prompts: Any = ..., outcomes: Any = ..., saved: Any = ..., server: Any = None, prices: Any = None, **_: Any
) -> Feedback:
    if problem := outcomes_problem(prompts, outcomes, "run_batched", saved=saved):
        return fail(problem)
    report = getattr(outcomes, "report", None)
    if report is None:
        return fail(
            "`outcomes` is a new list without the run's report: keep what run_batched returns as it is "
            "(sorted, filtered or copied, it loses the input order and its .report)."
        )
    if not isinstance(report, BatchedReport):
        return fail(
            f"these outcomes came from {getattr(report, 'runner', 'something else')}, which sends every turn live: "
            "resume the batched run with run_batched(agent, prompts, state_path=STATE) instead."
        )
    problem = (
        unanswered_problem(prompts, outcomes, "run_batched", "every one of these prompts should get its answer.")
        or resume_problem(report, server)
        or saving_problem(report, saved, prices)
    )
    if problem:
        return fail(problem)
    assert report.cost is not None
    return Feedback(
        True,
        (
            f"{len(outcomes)} answers in order, each of the {len(report.rounds)} rounds sent once, by the run that "
            f"crashed: resumed from the state file; batching saved ${report.cost.saved:.4f} ({report.cost.discount:.0%}) on this run.",
        ),
    )


def resume_problem(report: BatchedReport, server: Any) -> str | None:
    """This run sent round 1 of these conversations first (it is the run that crashed) and no round twice,
    read from the server's own list of batches; an earlier wrong try on the same server does not count."""
    if server is None or not report.rounds:
        return "pass `server=server` to check(...): the check reads which batches it received."
    oldest_first = server_json(server, "/v1/batches?limit=100")["data"][::-1]
    tags = {b["id"]: b.get("metadata") or {} for b in oldest_first}
    ours = tags.get(report.rounds[0].batch_id, {})
    if "agentlab_run" not in ours:
        return "these outcomes' batches are not on the exercise's server: keep the exercise's agent and server."
    same = [m for m in tags.values() if m.get("agentlab_run") == ours["agentlab_run"]]
    first = next(m for m in same if m.get("agentlab_round") == "1")
    if first.get("agentlab_run_id") != ours.get("agentlab_run_id"):
        return (
            "the server had received round 1 of these conversations from an earlier run (the one that crashed), "
            "and this run sent it again: it started over instead of going on from the state file (without "
            "state_path, with another file, or after the file was deleted). Pass the same state_path=STATE, "
            "untouched, so that it goes on where the crash left it."
        )
    sent = Counter(
        str(m.get("agentlab_round")) for m in same if m.get("agentlab_run_id") == ours.get("agentlab_run_id")
    )
    twice = sorted(round_ for round_, times in sent.items() if times > 1)
    return f"this run sent round {twice[0]} {sent[twice[0]]} times: send each round once." if twice else None


def saving_problem(report: BatchedReport, saved: Any, prices: Any) -> str | None:
    cost = report.cost
    if cost is None:
        return "this run has no cost: it used a model without a price; keep the exercise's agent."
    if not isinstance(saved, (int, float)) or isinstance(saved, bool):
        return f"`saved` should be a number of dollars, not {type(saved).__name__}."
    truth = cost_of(cost.usage, cost.model, prices) or cost
    if math.isclose(saved, truth.saved, rel_tol=1e-6):
        return None
    price = (prices or {}).get(cost.model, Price(0, 0))
    known = [
        (truth.batched, "is what the batched run cost; the exercise asks for what it saved: live minus batched"),
        (truth.live, "is what the run would cost live; what batching saved is live minus batched"),
        (truth.discount, f"is the share saved ({truth.discount:.0%}); the exercise asks for dollars"),
        (-truth.saved, "has the wrong sign: batching is the cheaper one, so live minus batched is above 0"),
        (
            truth.live / 2,
            f"is half the live cost: this provider takes {price.batch_discount:.0%} off, not half. "
            "Price the run with prices=PRICES and take live minus batched from report.cost",
        ),
    ]
    why = next((reason for value, reason in known if math.isclose(saved, value, rel_tol=1e-6)), None)
    return f"`saved` {why}." if why else f"`saved` is ${saved:.6f}, but live minus batched is ${truth.saved:.6f}."
