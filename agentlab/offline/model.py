"""The scripted "math model" behind the offline server: deterministic, tool-calling, and honest about limits.

Given the conversation so far and the tools offered, it decides the next turn, like a real model would:

1. Read the last user message and parse it into arithmetic (``arithmetic.py``): "What is (7 + 8) * (2 + 3)?",
   "Add 3, 4 and 5, then multiply by 2", "the product of six and seven".
2. Plan the work as calls to the **offered** tools (``planning.py``), picked by their names and descriptions,
   with arguments filled from their parameter schemas.
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

import json
import re
from dataclasses import dataclass
from typing import Any

from agentlab.offline.arithmetic import (
    OPERATIONS,
    Expr,
    Op,
    ParseError,
    TooLong,
    evaluate,
    operations,
    parse_prompt,
    render_answer,
)
from agentlab.offline.markers import Markers, parse_markers
from agentlab.offline.planning import (
    ModelToolCall,
    ToolChoice,
    choose_tools,
    emission_order,
    make_call,
    make_plan,
    make_step_call,
    mistaken_call,
)

__all__ = ["ModelToolCall", "ModelTurn", "respond", "planned_turns", "user_text"]

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
