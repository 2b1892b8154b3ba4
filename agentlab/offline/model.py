"""The scripted "math model" behind the offline server: deterministic, tool-calling, and honest about limits.

Given the conversation so far and the tools offered, it decides the next turn, like a real model would:

1. Read the last user message and parse it into arithmetic (``arithmetic.py``): "What is (7 + 8) * (2 + 3)?",
   "Add 3, 4 and 5, then multiply by 2", "the product of six and seven".
2. Plan the work as calls to the **offered** tools, picked by their names and descriptions (``choose_tools``),
   with arguments filled from their parameter schemas; the expression trees become numbered steps (``make_plan``).
3. Emit the calls: every independent step in one turn when ``parallel_tool_calls`` is true, one call per
   turn otherwise. It reads the tools' outputs from the next request and uses them as they are.
4. Answer in words with the number, e.g. ``"(7 + 8) * (2 + 3) = 75."``

When tools are missing:
- **No tools at all**: it works the answer out itself and replies directly.
- **Some tools, but none for an operation it needs** (say, division): it replies that it needs such a tool
  and names the tools it has. It never pretends.

Other prompts get a short, polite answer. A tool output that starts with "error" (or is not a number) ends
the conversation with an answer that reports it. Of the control markers (``markers.py``) the model acts on two,
unless the server runs with ``markers=False``:
- ``[mistake=unknown_tool]``, ``[mistake=bad_json]``, ``[mistake=wrong_types]``: the first call is wrong on
  purpose; after the client's "error: …" output the model carries on with the right plan.
- ``[loop]``: it never stops calling tools (to show ``MaxTurnsExceeded``).

The model is stateless (each request carries the whole conversation), pure, and never uses ``eval``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from agentlab.offline.arithmetic import (
    OPERATIONS,
    Expr,
    Num,
    Op,
    ParseError,
    TooLong,
    evaluate,
    operations,
    parse_prompt,
    render_answer,
)
from agentlab.offline.markers import Markers, parse_markers

__all__ = ["ModelToolCall", "ModelTurn", "respond", "planned_turns", "user_text", "choose_tools"]

NOT_MATH = (
    "I'm agentlab's offline practice model, so I can only do arithmetic with the tools you give me. "
    "Try asking: What is 12 + 30?"
)
GREETING = "Hello! I'm agentlab's offline practice model. Ask me some arithmetic, for example: What is 12 + 30?"
GREETING_WORDS = re.compile(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", re.IGNORECASE)
TANGLED = "That is too long or too tangled for me. Could you split it into smaller questions?"


@dataclass(frozen=True, slots=True)
class ModelTurn:
    calls: tuple[ModelToolCall, ...] = ()
    text: str = ""

    @property
    def output_tokens(self) -> int:
        return max(1, len(self.text) // 4 + 12 * len(self.calls))


def user_text(items: list[dict[str, Any]]) -> str:
    """The text of the last user message ("" when there is none)."""
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def respond(
    items: list[dict[str, Any]], tools: list[dict[str, Any]], parallel_tool_calls: bool, *, markers: bool = True
) -> ModelTurn:
    """The next turn of the conversation in ``items``: tool calls, or the final answer.

    With ``markers=False`` it takes ``[mistake=…]`` and ``[loop]`` for plain text, as a real model would.
    """
    try:
        return decide(items, tools, parallel_tool_calls, read_markers(user_text(items), markers))
    except (ParseError, RecursionError, OverflowError, ValueError, TypeError, KeyError, IndexError):
        return ModelTurn(text=TANGLED)


def planned_turns(prompt: str, tools: list[dict[str, Any]], parallel_tool_calls: bool, *, markers: bool = True) -> int:
    """How many model turns a normal run of ``prompt`` takes (the final answer included)."""
    try:
        exprs = parse_prompt(prompt)
        chosen = choose_tools(tools)
        if not tools or any(op not in chosen for e in exprs for op in operations(e)):
            return 1
        plan = make_plan(exprs, chosen)
    except (ParseError, RecursionError, OverflowError, ValueError):
        return 1
    mistake = 1 if planned_mistake(read_markers(prompt, markers), chosen) else 0
    return len(emission_order(plan, parallel_tool_calls)) + 1 + mistake


def read_markers(prompt: str, enabled: bool) -> Markers:
    return parse_markers(prompt) if enabled else Markers()


def planned_mistake(markers: Markers, chosen: dict[Op, ToolChoice]) -> str | None:
    """The ``[mistake=...]`` the model will make first, or None: it needs a tool it can call wrongly.

    ``decide`` and ``planned_turns`` both ask this, so the turns a forced duration is spread over are the turns
    the model really takes.
    """
    return markers.mistake if chosen else None


def decide(items: list[dict[str, Any]], tools: list[dict[str, Any]], parallel: bool, markers: Markers) -> ModelTurn:
    """What the model does next: loop, greet, answer by itself, ask for a tool, or take the next step."""
    prompt = user_text(items)
    chosen = choose_tools(tools)
    if markers.loop and chosen:
        return ModelTurn(calls=(make_call(next(iter(chosen.values())), (1.0, 1.0)),))
    try:
        exprs = parse_prompt(prompt)
    except TooLong:
        return ModelTurn(text=TANGLED)
    except ParseError:
        return ModelTurn(text=GREETING if GREETING_WORDS.search(prompt) else NOT_MATH)
    if not tools:
        return ModelTurn(text=render_answer(exprs, [evaluate(e) for e in exprs]))
    missing = sorted({op for e in exprs for op in operations(e)} - set(chosen))
    if missing:
        return ask_for_tools(missing, tools)
    return next_step(items, exprs, chosen, parallel, planned_mistake(markers, chosen))


def ask_for_tools(missing: list[Op], tools: list[dict[str, Any]]) -> ModelTurn:
    offered = ", ".join(str(t.get("name")) for t in tools if isinstance(t, dict))
    need = " and ".join(f"a tool that can {OPERATIONS[op].verb}" for op in missing)
    return ModelTurn(text=f"I need {need}, but none was offered (I have: {offered}). Add one and ask again.")


def next_step(
    items: list[dict[str, Any]], exprs: list[Expr], chosen: dict[Op, ToolChoice], parallel: bool, mistake: str | None
) -> ModelTurn:
    """Read the tools' outputs so far; call the next turn's tools, or answer when every step is done."""
    plan = make_plan(exprs, chosen)
    calls, outputs = calls_since_last_user_message(items)
    if mistake and not calls:
        return ModelTurn(calls=(mistaken_call(mistake, chosen),))
    turns = emission_order(plan, parallel)
    order = [step for turn in turns for step in turn]
    values: dict[int, float] = {}
    for step, call in zip(order, calls[1:] if mistake else calls, strict=False):
        output = outputs.get(str(call.get("call_id")), "")
        value = output_number(output)
        if value is None:
            return ModelTurn(
                text=f"I could not finish: {call.get('name')}({arguments_text(call)}) returned {output.strip()}"
            )
        values[step] = value
    if len(values) < len(order):
        next_turn = next(turn for turn in turns if turn[0] == order[len(values)])
        return ModelTurn(calls=tuple(make_step_call(plan, chosen, step, values) for step in next_turn))
    return ModelTurn(text=render_answer(exprs, [r if isinstance(r, float) else values[r] for r in plan.results]))


def calls_since_last_user_message(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    start = max((i for i, it in enumerate(items) if isinstance(it, dict) and it.get("role") == "user"), default=-1)
    calls = [it for it in items[start + 1 :] if isinstance(it, dict) and it.get("type") == "function_call"]
    outputs = {
        str(it.get("call_id")): str(it.get("output", ""))
        for it in items[start + 1 :]
        if isinstance(it, dict) and it.get("type") == "function_call_output"
    }
    return calls, outputs


def output_number(text: str) -> float | None:
    """The number a tool answered, or None when it answered an error or something else."""
    text = text.strip()
    if text.lower().startswith("error"):
        return None
    try:
        return float(json.loads(text)) if text else None
    except (ValueError, TypeError):
        return None


def arguments_text(call: dict[str, Any]) -> str:
    """A call's arguments as the model quotes them back: ``a=3, b=4`` (the raw text when it is not JSON)."""
    try:
        args = json.loads(str(call.get("arguments", "")))
    except ValueError:
        return str(call.get("arguments", ""))
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items()) if isinstance(args, dict) else str(args)


# -- Planning: which offered tool does each operation, and in which turns it calls them ------------------------------


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


# -- 1. Tools ----------------------------------------------------------------------------------------------------


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


# -- 2. Steps and turns ------------------------------------------------------------------------------------------


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


# -- 3. Calls ----------------------------------------------------------------------------------------------------


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
