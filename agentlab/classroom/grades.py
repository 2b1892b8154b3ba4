"""One row of grades.csv: what the grader decided about one learner's exercise (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["passed", "failed", "error", "timeout", "missing"]


@dataclass(frozen=True)
class Grade:
    """One row of grades.csv."""

    learner: str
    exercise: str
    status: Status
    seconds: float | None
    feedback: tuple[str, ...]
