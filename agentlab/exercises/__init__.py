"""Checks for the exercises in ``notebooks/exercises/``: specific feedback, not just pass or fail.

In an exercise notebook::

    from agentlab.exercises import check, hints
    hints("01")                       # hints that open one by one
    check("01", results=results)      # ✓ or ✗ with what to look at

Each exercise's checks live in their own module (``ex01``, ``ex02b``, …) as a function ``check(**answers)``
that returns a ``Feedback``. ``check`` shows it (HTML in a notebook, text elsewhere) and returns it, so a
test can assert on ``feedback.passed``.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHECK_MIME", "Feedback", "check", "hints", "HintsView"]

CHECK_MIME = "application/vnd.agentlab.check+json"  # {"exercise", "passed", "messages"}, beside the HTML


@dataclass(frozen=True)
class Feedback:
    """The result of a check: whether it passed, and one message per thing that was checked."""

    passed: bool
    messages: tuple[str, ...] = field(default=())
    exercise: str = field(default="", compare=False)

    def __str__(self) -> str:
        head = "✓ well done" if self.passed else "✗ not yet"
        return "\n".join([head, *(f"  - {m}" for m in self.messages)])

    def __repr__(self) -> str:
        return f"Feedback(passed={self.passed})\n{self}"

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.passed else "#b3261e"
        head = "✓ well done" if self.passed else "✗ not yet"
        items = "".join(f"<li>{html.escape(m)}</li>" for m in self.messages)
        return f"<div style='border-left:4px solid {colour};padding-left:8px'><b>{head}</b><ul>{items}</ul></div>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The verdict for machines, beside the HTML: the grader reads this instead of parsing HTML."""
        verdict = {"exercise": self.exercise, "passed": self.passed, "messages": list(self.messages)}
        return {CHECK_MIME: verdict}


def check(exercise: str, /, **answers: Any) -> Feedback:
    """Check an exercise (``"01"``, ``"04b"``, …) and return the feedback (a notebook displays it)."""
    module = load(exercise)
    feedback: Feedback = module.check(**answers)
    feedback = dataclasses.replace(feedback, exercise=feedback.exercise or exercise.strip().zfill(2))
    if os.environ.get("NBGRADER_EXECUTION") and not feedback.passed:
        fail_for_nbgrader(feedback)
    return feedback


def fail_for_nbgrader(feedback: Feedback) -> None:
    """nbgrader awards a test cell's points when the cell does not raise: show the feedback, then raise."""
    from IPython.display import display

    display(feedback)  # type: ignore[no-untyped-call]
    raise AssertionError(f"exercise {feedback.exercise}: {feedback}")


@dataclass(frozen=True)
class HintsView:
    """Hints that open one at a time (HTML ``<details>``, which works in JupyterLab and on GitHub)."""

    exercise: str
    items: Sequence[str]

    def __str__(self) -> str:
        return "\n".join(f"Hint {i}: {text}" for i, text in enumerate(self.items, 1))

    def _repr_html_(self) -> str:
        blocks = "".join(
            f"<details><summary>Hint {i}</summary><p>{html.escape(text)}</p></details>"
            for i, text in enumerate(self.items, 1)
        )
        return f"<div><b>Hints for exercise {html.escape(self.exercise)}</b> (open one at a time){blocks}</div>"


def hints(exercise: str) -> HintsView:
    """The hints of an exercise, each one folded until you open it."""
    return HintsView(exercise, tuple(load(exercise).HINTS))


def load(exercise: str) -> Any:
    name = exercise.strip().zfill(2)
    try:
        return importlib.import_module(f"agentlab.exercises.ex{name}")
    except ModuleNotFoundError:
        raise ValueError(f"there is no exercise {exercise!r}: use the id of its check cell, such as '04b'") from None
