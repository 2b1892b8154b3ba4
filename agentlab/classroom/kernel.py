"""Runs inside the learner's kernel, in the grader's own last cell: a fresh check on the learner's variables.

The learner may have redefined ``check``, patched the exercise module, or deleted cells. So this cell reloads
the exercise modules from disk, picks the answers by the check function's parameter names (evaluating the
expressions the course's own check cell passes, such as ``tool_seconds=1 * SCALE``), and shows the fresh
Feedback, whose ``application/vnd.agentlab.check+json`` output is the only thing the grader reads.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

MISSING = object()


def judge(exercise: str, namespace: dict[str, Any], expressions: dict[str, str]) -> Any:
    """The fresh Feedback of ``exercise`` on the names in ``namespace`` (a failed one when the check breaks)."""
    exercises = importlib.reload(importlib.import_module("agentlab.exercises"))
    importlib.reload(importlib.import_module("agentlab.exercises._helpers"))
    module = importlib.reload(importlib.import_module(f"agentlab.exercises.ex{exercise}"))
    answers = pick_answers(module.check, namespace, expressions)
    try:
        feedback = module.check(**answers)
    except Exception as exc:  # a strange answer must not hide the verdict: it is a failed check
        feedback = exercises.Feedback(False, (f"the check could not judge your answers: {type(exc).__name__}: {exc}",))
    return exercises.Feedback(bool(feedback.passed), tuple(str(m) for m in feedback.messages), exercise)


def pick_answers(check: Any, namespace: dict[str, Any], expressions: dict[str, str]) -> dict[str, Any]:
    """The check's parameters that the learner's namespace can fill; the others keep the check's default."""
    answers: dict[str, Any] = {}
    for name, parameter in inspect.signature(check).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        value = evaluate(expressions.get(name, name), namespace)
        if value is not MISSING:
            answers[name] = value
    return answers


def evaluate(expression: str, namespace: dict[str, Any]) -> Any:
    try:
        return eval(expression, namespace)  # the course's own expression, on the learner's variables
    except Exception:  # an undefined name is a missing answer, which the check names
        return MISSING
