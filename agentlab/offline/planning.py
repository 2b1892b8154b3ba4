"""Planning for the scripted model: which offered tool does each operation, and in which turns it calls them.

1. ``choose_tools``: a tool does the operation its name names (``sum_numbers``, ``multiplyNumbers``), or, when
   its name names none, the first one its description names. Its arguments come from its parameter schema:
   two numbers under whatever names, or one list of numbers.
2. ``make_plan``: the expression trees become numbered steps, each an operation on numbers or earlier steps.
3. ``emission_order``: every independent step in one turn when ``parallel_tool_calls`` is true, one step per
   turn otherwise.
4. ``make_step_call``: one step becomes a tool call with JSON arguments, as the Responses API sends them.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from agentlab.offline.arithmetic import OPERATIONS, Expr, Num, Op, ParseError

__all__ = ["ModelToolCall", "ToolChoice", "Plan", "choose_tools", "first_operation", "make_plan"]
__all__ += ["emission_order", "make_step_call", "make_call", "mistaken_call"]

MAX_STEPS = 200
CACHE_SIZE, CACHED_LENGTH = 4096, 1000  # at most 4 MB of cached tool names and descriptions
OP_WORD = re.compile(r"\b(?:" + "|".join(f"(?P<{op}>{o.keywords})" for op, o in OPERATIONS.items()) + r")\b")


@dataclass(frozen=True, slots=True)
class ModelToolCall:
    name: str
    arguments: str  # JSON text, as the Responses API sends it


@dataclass(frozen=True, slots=True)
class ToolChoice:
    name: str
    params: tuple[str, ...]  # two names for a binary tool, one name for a list tool
    integer: bool = False

    @property
    def takes_list(self) -> bool:
        return len(self.params) == 1


Ref: TypeAlias = float | int  # a float is a literal; an int is the index of an earlier step


@dataclass(slots=True)
class Plan:
    steps: list[tuple[Op, tuple[Ref, ...]]] = field(default_factory=list)
    results: list[Ref] = field(default_factory=list)  # what each expression of the prompt comes to

    def add(self, op: Op, operands: tuple[Ref, ...]) -> int:
        if len(self.steps) >= MAX_STEPS:
            raise ParseError("too many steps")
        self.steps.append((op, operands))
        return len(self.steps) - 1


# -- 1. Tools ------------------------------------------------------------------------------------------------------


def choose_tools(tools: list[dict[str, Any]]) -> dict[Op, ToolChoice]:
    """For each operation, the first offered tool that names it and whose schema we can fill.

    A tool does the operation that its name names (``sum_numbers``, ``plus``, ``multiplyNumbers``), or, when its
    name names none, the *first* one that its description names: "Divide a by b, e.g. after you add" divides.
    Whole words only, so "additional" is not "add". Tools whose names fit win over tools whose descriptions fit.
    """
    by_name: dict[Op, ToolChoice] = {}
    by_description: dict[Op, ToolChoice] = {}
    for tool in tools:
        rule = fill_rule(tool) if is_function(tool) else None
        if rule is None:
            continue
        choice = ToolChoice(str(tool["name"]), *rule)
        if op := first_operation(str(tool["name"])):
            by_name.setdefault(op, choice)
        elif op := first_operation(str(tool.get("description") or "")):
            by_description.setdefault(op, choice)
    return by_description | by_name


def first_operation(text: str) -> Op | None:
    """The operation named first in ``text``: "sum_numbers" → add, "Multiplies two numbers" → mul.

    The same tool names and descriptions come back in every request, so short ones are cached; a long one is
    read afresh each time, so that what clients send never piles up in memory (the cache holds at most
    ``CACHE_SIZE`` texts of at most ``CACHED_LENGTH`` characters).
    """
    return cached_first_operation(text) if len(text) <= CACHED_LENGTH else find_first_operation(text)


def find_first_operation(text: str) -> Op | None:
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").lower()  # camelCase and snake_case
    match = OP_WORD.search(words)
    if match is None:
        return None
    return next(op for op in OPERATIONS if match.group(op))


cached_first_operation = functools.lru_cache(maxsize=CACHE_SIZE)(find_first_operation)


def is_function(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("type", "function") == "function" and isinstance(tool.get("name"), str)


def fill_rule(tool: dict[str, Any]) -> tuple[tuple[str, ...], bool] | None:
    """How to fill this tool's arguments: two numeric parameters, or one array of numbers; None if neither."""
    schema = tool.get("parameters")
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return None
    required = schema.get("required") if isinstance(schema.get("required"), list) else []  # type: ignore[union-attr]
    order = [p for p in required if p in props] + [p for p in props if p not in required]
    numeric = [p for p in order if isinstance(props[p], dict) and props[p].get("type") in ("number", "integer")]
    arrays = [
        p
        for p in order
        if isinstance(props[p], dict)
        and props[p].get("type") == "array"
        and isinstance(props[p].get("items"), dict)
        and props[p]["items"].get("type") in ("number", "integer")
    ]
    if len(numeric) >= 2 and len(order) == len(numeric):
        return (numeric[0], numeric[1]), props[numeric[0]].get("type") == "integer"
    if len(arrays) == 1 and len(order) == 1:
        return (arrays[0],), props[arrays[0]]["items"].get("type") == "integer"
    return None


# -- 2. Steps and turns --------------------------------------------------------------------------------------------


def make_plan(exprs: list[Expr], tools: dict[Op, ToolChoice]) -> Plan:
    """Post-order steps; n-ary add/multiply become one step for a list tool, a chain for a binary tool."""
    plan = Plan()

    def visit(expr: Expr) -> Ref:
        if isinstance(expr, Num):
            return expr.value
        refs = tuple(visit(arg) for arg in expr.args)
        if tools[expr.op].takes_list:
            return plan.add(expr.op, refs)
        result = plan.add(expr.op, refs[:2])
        for ref in refs[2:]:
            result = plan.add(expr.op, (result, ref))
        return result

    plan.results = [visit(e) for e in exprs]
    return plan


def emission_order(plan: Plan, parallel: bool) -> list[list[int]]:
    """The turns: each a list of step indices. Waves of independent steps, or one step per turn."""
    if not parallel:
        return [[i] for i in range(len(plan.steps))]
    wave_of: list[int] = []
    for _, operands in plan.steps:
        wave_of.append(1 + max((wave_of[r] for r in operands if isinstance(r, int)), default=-1))
    return [[i for i, w in enumerate(wave_of) if w == wave] for wave in range(max(wave_of, default=-1) + 1)]


# -- 3. Calls ------------------------------------------------------------------------------------------------------


def make_step_call(plan: Plan, chosen: dict[Op, ToolChoice], step: int, values: dict[int, float]) -> ModelToolCall:
    """The call for one step, with the earlier steps' results filled in."""
    op, operands = plan.steps[step]
    numbers = tuple(r if isinstance(r, float) else values[r] for r in operands)
    return make_call(chosen[op], numbers)


def make_call(choice: ToolChoice, numbers: tuple[float, ...]) -> ModelToolCall:
    args = [to_json_number(n) for n in numbers]
    return ModelToolCall(choice.name, json.dumps(arguments_for(choice, args), separators=(",", ":")))


def arguments_for(choice: ToolChoice, values: list[Any]) -> dict[str, Any]:
    """``{"a": 3, "b": 4}`` for a binary tool, ``{"values": [3, 4, 5]}`` for a list tool."""
    return {choice.params[0]: values} if choice.takes_list else dict(zip(choice.params, values, strict=False))


def mistaken_call(kind: str, chosen: dict[Op, ToolChoice]) -> ModelToolCall:
    """The wrong first call that ``[mistake=kind]`` asks for: an unknown tool, broken JSON, or words for numbers."""
    choice = next(iter(chosen.values()))
    if kind == "unknown_tool":
        return ModelToolCall("calculator_9000", json.dumps({"a": 1, "b": 2}, separators=(",", ":")))
    if kind == "bad_json":
        return ModelToolCall(choice.name, '{"a": 3, "b": ')
    words = ["three", "four"]
    return ModelToolCall(choice.name, json.dumps(arguments_for(choice, words), separators=(",", ":")))


def to_json_number(value: float) -> float | int:
    return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 else value
