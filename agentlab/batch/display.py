"""The progress of a batched run: one bar per round, with the batch's status and request counts.

``progress=True`` draws a ``tqdm.auto`` bar per round (the widget bar in Jupyter, text in a terminal):
``round 2 · batch_…: 340/1000 [in_progress, 0 failed]``. Any object with a ``show(round, batch)`` method
can take its place, for example to log the rounds.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

from openai.types import Batch as ApiBatch

__all__ = ["RoundDisplay", "TqdmRounds", "SimulatedCrash", "crash_at_round", "make_display"]


class RoundDisplay(Protocol):
    def show(self, round_number: int, batch: ApiBatch) -> None: ...


class TqdmRounds:
    """A tqdm bar per round; each look at the batch moves it to the batch's request counts."""

    def __init__(self) -> None:
        self.round = 0
        self.bar: Any = None

    def show(self, round_number: int, batch: ApiBatch) -> None:
        counts = batch.request_counts
        finished = batch.status in ("completed", "failed", "expired", "cancelled")
        if round_number != self.round:
            self.close()
            self.round = round_number
        if self.bar is None and (counts and counts.total or finished):  # the size is known once it validated
            self.bar = new_bar(f"round {round_number}", counts.total if counts else 0)
        if self.bar is None:
            return
        self.bar.n = counts.completed + counts.failed if counts else 0
        self.bar.set_postfix_str(f"{batch.status}, {counts.failed if counts else 0} failed", refresh=True)
        if finished:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def new_bar(label: str, total: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm warns when ipywidgets is missing; the text bar is fine
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=label, unit="req")
        except Exception:  # no widget front end: the plain text bar
            from tqdm import tqdm as text_tqdm

            return text_tqdm(total=total, desc=label, unit="req")


def make_display(progress: bool | RoundDisplay) -> RoundDisplay | None:
    if progress is True:
        return TqdmRounds()
    if progress is False or progress is None:
        return None
    return progress


class SimulatedCrash(RuntimeError):
    """Raised by ``crash_at_round``: the run stops as if its kernel had died there."""


class CrashAtRound:
    def __init__(self, round_number: int) -> None:
        self.round = round_number

    def show(self, round_number: int, batch: ApiBatch) -> None:
        if round_number >= self.round:
            raise SimulatedCrash(
                f"simulated crash in round {round_number}, while {batch.id} was {batch.status}: "
                "run run_batched again with the same state_path to go on"
            )


def crash_at_round(round_number: int) -> RoundDisplay:
    """A 'display' that stops the run the first time it sees this round's batch (for lessons and tests).

    By then the round's file is uploaded and its batch created, and both are in the state file: the moment a
    crash is most likely to send a turn twice, if the state were not kept.
    """
    return CrashAtRound(round_number)
