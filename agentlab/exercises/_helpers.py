"""Small pieces shared by the exercise checks."""

from __future__ import annotations

import inspect
from typing import Any

from agentlab.results import RunResult


def missing(**answers: Any) -> list[str]:
    """The names of answers that are still placeholders (``...`` or ``None``)."""
    return [name for name, value in answers.items() if value is ... or value is None]


def fill_in(names: list[str]) -> str:
    return f"fill in {', '.join(f'`{n}`' for n in names)} first: replace the `...` in the TODO cell"


def not_awaited(results: Any) -> bool:
    return isinstance(results, list) and any(inspect.iscoroutine(r) or inspect.isawaitable(r) for r in results)


def run_results(results: Any) -> list[RunResult] | None:
    if isinstance(results, (list, tuple)) and results and all(isinstance(r, RunResult) for r in results):
        return list(results)
    return None


def first_user_text(messages: list[dict[str, Any]]) -> Any:
    return messages[0].get("content") if messages else None


def describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {len(value)} item(s) of type {', '.join(kinds) or '-'}"
    return f"a {type(value).__name__}: {value!r:.60}"


def order_problem(runs: list[RunResult], prompts: Any, order_hint: str) -> str | None:
    """What is wrong with the results' count or order against ``prompts``, or None when they match."""
    if not isinstance(prompts, list):
        return None
    if len(runs) != len(prompts):
        return f"you have {len(runs)} results for {len(prompts)} prompts: run each prompt once."
    if [first_user_text(r.messages) for r in runs] != prompts:
        return f"the results are not in the order of the prompts: {order_hint}"
    return None
