"""Exercise 08: a batched run that died in round 2, resumed from its state file, and what batching saved."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from agentlab.batch import BatchedReport
from agentlab.exercises import Feedback
from agentlab.exercises._helpers import outcomes_problem, unanswered_problem

HINTS = [
    "`run_batched(agent, prompts, state_path=...)` reads the state file first: with the same agent, prompts and "
    "path, it goes on where the run stopped, and sends no turn twice.",
    "The report of a batched run has `report.cost`: `cost.live` is what the same tokens cost sent live, "
    "`cost.batched` what they cost through the Batch API. The saving is the difference, in dollars.",
    "The first line awaits `run_batched` with the same agent, prompts and `state_path=STATE`; the second takes "
    "the batched cost from the live one, both in `outcomes.report.cost`.",
]


def check(prompts: Any = ..., outcomes: Any = ..., state_path: Any = ..., saved: Any = ..., **_: Any) -> Feedback:
    if problem := outcomes_problem(prompts, outcomes, "run_batched", saved=saved):
        return Feedback(False, (problem,))
    report = getattr(outcomes, "report", None)
    if report is None:
        return Feedback(
            False,
            (
                "`outcomes` is a new list without the run's report: keep what run_batched returns as it is "
                "(sorted, filtered or copied, it loses the input order and its .report).",
            ),
        )
    if not isinstance(report, BatchedReport):
        runner = getattr(report, "runner", "something else")
        return Feedback(
            False,
            (
                f"these outcomes came from {runner}, which sends every turn live: resume the batched run "
                "with run_batched(agent, prompts, state_path=STATE) instead.",
            ),
        )
    problem = (
        unanswered_problem(prompts, outcomes, "run_batched", "every one of these prompts should get its answer.")
        or resume_problem(report, state_path)
        or saving_problem(report, saved)
    )
    if problem:
        return Feedback(False, (problem,))
    assert report.cost is not None
    return Feedback(
        True,
        (
            f"{len(outcomes)} answers in order, from {len(report.rounds)} rounds resumed from the state file; "
            f"batching saved ${report.cost.saved:.4f} ({report.cost.discount:.0%}) on this run.",
        ),
    )


def resume_problem(report: BatchedReport, state_path: Any) -> str | None:
    """The outcomes must come from the run in the state file: the same batches, round by round."""
    try:
        state = json.loads(Path(state_path).read_text(encoding="utf-8"))
        saved_rounds = [r["batch_id"] for r in state["rounds"]]
    except (OSError, TypeError, ValueError, KeyError):
        return f"there is no readable state file at {state_path!r}: pass state_path=STATE, the file of the run."
    if [r.batch_id for r in report.rounds] != saved_rounds:
        return (
            "these outcomes come from a fresh run, not from the state file: it sent round 1 again. Pass the same "
            "state_path=STATE to run_batched, so that it goes on where the crashed run stopped."
        )
    return None


def saving_problem(report: BatchedReport, saved: Any) -> str | None:
    cost = report.cost
    if cost is None:
        return "this run has no cost: it used a model without a price; keep the exercise's agent."
    if not isinstance(saved, (int, float)) or isinstance(saved, bool):
        return f"`saved` should be a number of dollars, not {type(saved).__name__}."
    if math.isclose(saved, cost.saved, rel_tol=1e-6):
        return None  # (at a discount of one half, the saving is also what the batched run cost)
    if math.isclose(saved, cost.batched, rel_tol=1e-9):
        return "`saved` is what the batched run cost; the exercise asks for what it saved: live minus batched."
    if math.isclose(saved, cost.live, rel_tol=1e-9):
        return "`saved` is what the run would cost live; what batching saved is live minus batched."
    if math.isclose(saved, cost.discount, rel_tol=1e-9):
        return f"`saved` is the share saved ({cost.discount:.0%}); the exercise asks for dollars: live minus batched."
    if math.isclose(saved, -cost.saved, rel_tol=1e-9):
        return "`saved` has the wrong sign: batching is the cheaper one, so live minus batched is above 0."
    return f"`saved` is ${saved:.6f}, but live minus batched is ${cost.saved:.6f}: use `report.cost`."
