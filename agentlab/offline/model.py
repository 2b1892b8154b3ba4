"""The scripted "math model" behind the offline server: deterministic, tool-calling, and honest about limits.

Given the conversation so far and the tools offered, it decides the next turn, like a real model would:

1. Read the last user message and parse it into arithmetic: digits and number words up to the thousands
   ("twenty-one"), + - * / × ÷ x, "plus", "minus", "times", "multiplied by", "divided by", "over",
   parentheses, and verb phrases such as "Add 3, 4 and 5, then multiply by 2", "Sum 1.5 and 2.25",
   "the product of 6 and 7", "subtract 3 from 10". Several questions in one prompt ("What is 3 + 4, and
   5 + 6?") become several results.
2. Plan the work as calls to the **offered** tools. It picks a tool for each operation by its name, then its
   description (add ← add/sum/plus/total, multiply ← multiply/times/product/mul, …), and fills the arguments
   from the tool's parameter schema: two numbers under whatever names, or one list of numbers.
3. Emit the calls: every independent step in one turn when ``parallel_tool_calls`` is true, one call per
   turn otherwise. It reads the tools' outputs from the next request and uses them as they are.
4. Answer in words with the number, e.g. ``"(7 + 8) * (2 + 3) = 75."``

When tools are missing:
- **No tools at all**: it works the answer out itself and replies directly.
- **Some tools, but none for an operation it needs** (say, division): it replies that it needs such a tool
  and names the tools it has. It never pretends.

Other prompts get a short, polite answer. A tool output that starts with "error" (or is not a number) ends
the conversation with an answer that reports it. Markers in square brackets are for the server
(``[duration=5]``, ``[fault=429]``); the model acts on two of them:
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from agentlab.offline.markers import MARKER, parse_markers

__all__ = ["ModelToolCall", "ModelTurn", "respond", "planned_turns", "user_text"]

Op: TypeAlias = Literal["add", "sub", "mul", "div"]
SYMBOL: dict[Op, str] = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
VERB_NAME: dict[Op, str] = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}
# Whole words (and their usual endings) that name each operation in a tool's name or description.
KEYWORDS: dict[Op, str] = {
    "add": r"add(?:s|ed|ing|ition)?|sum(?:s|med|ming)?|plus|total(?:s)?",
    "sub": r"subtract(?:s|ed|ing|ion)?|minus|difference|sub",
    "mul": r"multipl(?:y|ies|ied|ying|ication)|times|product|mul",
    "div": r"divid(?:e|es|ed|ing)|division|quotient|div|ratio|over",
}
OP_WORD = re.compile(r"\b(?:" + "|".join(f"(?P<{op}>{words})" for op, words in KEYWORDS.items()) + r")\b")
VERBS: dict[str, Op] = {
    "add": "add",
    "sum": "add",
    "total": "add",
    "subtract": "sub",
    "difference": "sub",
    "multiply": "mul",
    "product": "mul",
    "divide": "div",
    "quotient": "div",
}
INFIX_WORDS = {"plus": "+", "minus": "-", "times": "*", "x": "*", "over": "/", "×": "*", "÷": "/"}
UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
SEPARATORS = {",", "and", "by", "from", "to", "with"}
MAX_STEPS = 200
NOT_MATH = (
    "I'm agentlab's offline practice model, so I can only do arithmetic with the tools you give me. "
    "Try asking: What is 12 + 30?"
)
GREETING = "Hello! I'm agentlab's offline practice model. Ask me some arithmetic, for example: What is 12 + 30?"

HYPHENATED = re.compile(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-(?=[a-z])")
TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+|[-+*/×÷(),]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ModelToolCall:
    name: str
    arguments: str  # JSON text, as the Responses API sends it


@dataclass(frozen=True, slots=True)
class ModelTurn:
    calls: tuple[ModelToolCall, ...] = ()
    text: str = ""

    @property
    def output_tokens(self) -> int:
        return max(1, len(self.text) // 4 + 12 * len(self.calls))


# -- 1. Parsing: text → expression trees --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class Node:
    op: Op
    args: tuple[Expr, ...]


Expr: TypeAlias = Num | Node


class ParseError(Exception):
    pass


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


def markers(text: str) -> dict[str, str]:
    return parse_markers(text).flags


def tokenize(text: str) -> list[str | float]:
    """Words, symbols and numbers; number words become numbers ("twenty-one" → 21.0)."""
    text = MARKER.sub(" ", text).lower().replace("multiplied by", "times").replace("divided by", "over")
    words = TOKEN.findall(HYPHENATED.sub(r"\1 ", text))  # "twenty-one" → "twenty one"
    tokens: list[str | float] = []
    i = 0
    while i < len(words):
        number, i = read_number_words(words, i)
        if number is not None:
            tokens.append(number)
            continue
        word = words[i]
        i += 1
        if word[0].isdigit() or word[0] == ".":
            tokens.append(float(word))
        elif word == "negative":
            tokens.append("-")
        else:
            tokens.append(INFIX_WORDS.get(word, word))
    return tokens


def read_number_words(words: list[str], i: int) -> tuple[float | None, int]:
    """Read "three hundred and five" starting at ``words[i]``; (None, i) when there is no number word."""
    total = current = 0
    found = False
    while i < len(words):
        word = words[i]
        if word in UNITS:
            current += UNITS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "hundred" and found:
            current *= 100
        elif word == "thousand" and found:
            total, current = total + current * 1000, 0
        elif word == "and" and found and i + 1 < len(words) and (words[i + 1] in UNITS or words[i + 1] in TENS):
            if words[i - 1] not in ("hundred", "thousand"):
                break
        else:
            break
        found = True
        i += 1
    return (float(total + current), i) if found else (None, i)


def parse_prompt(text: str) -> list[Expr]:
    """All the calculations a prompt asks for. ParseError when it holds none."""
    tokens = tokenize(text)
    if not any(isinstance(t, float) for t in tokens):
        raise ParseError("no numbers")
    # "multiply 3 by 4 and add 2": 'and' followed by a verb means 'then'
    tokens = [
        "then" if t == "and" and i + 1 < len(tokens) and tokens[i + 1] in VERBS else t for i, t in enumerate(tokens)
    ]
    clauses = split(tokens, {"then"})
    exprs = parse_clause(clauses[0], None)
    for clause in clauses[1:]:
        if len(exprs) != 1:
            raise ParseError("'then' after several results")
        exprs = parse_clause(clause, exprs[0])
    return exprs


def parse_clause(tokens: list[str | float], previous: Expr | None) -> list[Expr]:
    verb_at = next((i for i, t in enumerate(tokens) if isinstance(t, str) and t in VERBS), None)
    if verb_at is None:  # infix: "12 + 30", "3 + 4, and 5 + 6"
        exprs = [parse_infix(part) for part in split(tokens, {",", "and"}) if has_number(part)]
        if previous is not None:
            raise ParseError("a 'then' clause needs a verb")
        if not exprs:
            raise ParseError("no expression")
        return exprs
    op = VERBS[str(tokens[verb_at])]
    operands = [parse_infix(part) for part in split(tokens[verb_at + 1 :], SEPARATORS) if has_number(part)]
    if "from" in tokens and op == "sub" and len(operands) == 2:  # "subtract 3 from 10" is 10 - 3
        operands.reverse()
    if previous is not None:
        operands.insert(0, previous)
    if len(operands) < 2:
        raise ParseError(f"{op} needs two numbers")
    if op in ("sub", "div"):
        return [fold(op, operands)]
    return [Node(op, tuple(operands))]


def fold(op: Op, operands: list[Expr]) -> Expr:
    result = operands[0]
    for operand in operands[1:]:
        result = Node(op, (result, operand))
    return result


def split(tokens: list[str | float], separators: set[str]) -> list[list[str | float]]:
    """Split at separator words that are outside parentheses."""
    parts: list[list[str | float]] = [[]]
    depth = 0
    for token in tokens:
        depth += (token == "(") - (token == ")")
        if depth == 0 and isinstance(token, str) and token in separators:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def has_number(tokens: list[str | float]) -> bool:
    return any(isinstance(t, float) for t in tokens)


def parse_infix(tokens: list[str | float]) -> Expr:
    """Recursive descent over + - * / and parentheses; filler words are skipped."""
    symbols = [t for t in tokens if isinstance(t, float) or t in "+-*/()"]
    expr, rest = parse_sum(symbols)
    if rest:
        raise ParseError(f"unexpected {rest[0]!r}")
    return expr


SUM_OPS: dict[str, Op] = {"+": "add", "-": "sub"}
PRODUCT_OPS: dict[str, Op] = {"*": "mul", "/": "div"}
Tokens: TypeAlias = list[str | float]


def parse_sum(tokens: Tokens) -> tuple[Expr, Tokens]:
    return parse_chain(tokens, SUM_OPS, parse_product)


def parse_product(tokens: Tokens) -> tuple[Expr, Tokens]:
    return parse_chain(tokens, PRODUCT_OPS, parse_unary)


def parse_chain(
    tokens: Tokens, ops: dict[str, Op], parse_operand: Callable[[Tokens], tuple[Expr, Tokens]]
) -> tuple[Expr, Tokens]:
    """A left-associative chain of operands joined by the operators in ``ops``: 1 - 2 - 3 is (1 - 2) - 3."""
    left, tokens = parse_operand(tokens)
    while tokens and isinstance(tokens[0], str) and tokens[0] in ops:
        op = ops[tokens[0]]
        right, tokens = parse_operand(tokens[1:])
        left = Node(op, (left, right))
    return left, tokens


def parse_unary(tokens: list[str | float]) -> tuple[Expr, list[str | float]]:
    if not tokens:
        raise ParseError("expression ends too early")
    head, rest = tokens[0], tokens[1:]
    if head in ("-", "+"):
        inner, rest = parse_unary(rest)
        if head == "+":
            return inner, rest
        return (Num(-inner.value), rest) if isinstance(inner, Num) else (Node("sub", (Num(0.0), inner)), rest)
    if isinstance(head, float):
        return Num(head), rest
    if head == "(":
        inner, rest = parse_sum(rest)
        if not rest or rest[0] != ")":
            raise ParseError("missing )")
        return inner, rest[1:]
    raise ParseError(f"unexpected {head!r}")


# -- 2. Planning: trees → steps → tool calls ------------------------------------------------------------------


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


@functools.lru_cache(maxsize=4096)  # the same tool names and descriptions come back in every request
def first_operation(text: str) -> Op | None:
    """The operation named first in ``text``: "sum_numbers" → add, "Multiplies two numbers" → mul."""
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").lower()  # camelCase and snake_case
    match = OP_WORD.search(words)
    if match is None:
        return None
    return next(op for op in KEYWORDS if match.group(op))


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


def operations(expr: Expr) -> set[Op]:
    return set() if isinstance(expr, Num) else {expr.op}.union(*(operations(a) for a in expr.args))


# -- 3. Responding: the next turn ------------------------------------------------------------------------------


def respond(items: list[dict[str, Any]], tools: list[dict[str, Any]], parallel_tool_calls: bool) -> ModelTurn:
    """The next turn of the conversation in ``items``: tool calls, or the final answer."""
    try:
        return decide(items, tools, parallel_tool_calls)
    except (ParseError, RecursionError, OverflowError, ValueError, TypeError, KeyError, IndexError):
        return ModelTurn(text="That is too long or too tangled for me. Could you split it into smaller questions?")


def planned_turns(prompt: str, tools: list[dict[str, Any]], parallel_tool_calls: bool) -> int:
    """How many model turns a normal run of ``prompt`` takes (the final answer included)."""
    try:
        exprs = parse_prompt(prompt)
        chosen = choose_tools(tools)
        if not tools or any(op not in chosen for e in exprs for op in operations(e)):
            return 1
        plan = make_plan(exprs, chosen)
    except (ParseError, RecursionError, OverflowError, ValueError):
        return 1
    mistake = 1 if planned_mistake(markers(prompt), chosen) else 0
    return len(emission_order(plan, parallel_tool_calls)) + 1 + mistake


MISTAKES = ("unknown_tool", "bad_json", "wrong_types")


def planned_mistake(flags: dict[str, str], chosen: dict[Op, ToolChoice]) -> str | None:
    """The ``[mistake=...]`` the model will make first, or None: it needs a tool it can call wrongly.

    ``decide`` and ``planned_turns`` both ask this, so the turns a forced duration is spread over are the turns
    the model really takes.
    """
    kind = flags.get("mistake")
    return kind if kind in MISTAKES and chosen else None


def decide(items: list[dict[str, Any]], tools: list[dict[str, Any]], parallel: bool) -> ModelTurn:
    prompt = user_text(items)
    flags = markers(prompt)
    calls, outputs = calls_since_last_user_message(items)
    chosen = choose_tools(tools)

    if "loop" in flags and chosen:
        return ModelTurn(calls=(make_call(next(iter(chosen.values())), (1.0, 1.0)),))
    try:
        exprs = parse_prompt(prompt)
    except ParseError:
        greeting = re.search(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", prompt, re.IGNORECASE)
        return ModelTurn(text=GREETING if greeting else NOT_MATH)
    if not tools:
        return ModelTurn(text=render_answer(exprs, [evaluate(e) for e in exprs]))
    missing = sorted({op for e in exprs for op in operations(e)} - set(chosen))
    if missing:
        offered = ", ".join(str(t.get("name")) for t in tools if isinstance(t, dict))
        need = " and ".join(f"a tool that can {VERB_NAME[op]}" for op in missing)
        return ModelTurn(text=f"I need {need}, but none was offered (I have: {offered}). Add one and ask again.")

    plan = make_plan(exprs, chosen)
    mistake = planned_mistake(flags, chosen)
    if mistake and not calls:
        return ModelTurn(calls=(mistaken_call(mistake, chosen),))
    done_calls = calls[1:] if mistake else calls

    # Which steps are done, and what did the tools answer?
    turns = emission_order(plan, parallel)
    order = [step for turn in turns for step in turn]
    values: dict[int, float] = {}
    for step, call in zip(order, done_calls, strict=False):
        output = outputs.get(str(call.get("call_id")), "")
        value = read_number(output)
        if value is None:
            return ModelTurn(text=f"I could not finish: {call.get('name')}({describe(call)}) returned {output.strip()}")
        values[step] = value
    if len(values) < len(order):
        next_turn = next(turn for turn in turns if turn[0] == order[len(values)])
        return ModelTurn(calls=tuple(make_step_call(plan, chosen, step, values) for step in next_turn))
    results = [r if isinstance(r, float) else values[r] for r in plan.results]
    return ModelTurn(text=render_answer(exprs, results))


def calls_since_last_user_message(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    start = max((i for i, it in enumerate(items) if isinstance(it, dict) and it.get("role") == "user"), default=-1)
    calls = [it for it in items[start + 1 :] if isinstance(it, dict) and it.get("type") == "function_call"]
    outputs = {
        str(it.get("call_id")): str(it.get("output", ""))
        for it in items[start + 1 :]
        if isinstance(it, dict) and it.get("type") == "function_call_output"
    }
    return calls, outputs


def make_step_call(plan: Plan, chosen: dict[Op, ToolChoice], step: int, values: dict[int, float]) -> ModelToolCall:
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
    choice = next(iter(chosen.values()))
    if kind == "unknown_tool":
        return ModelToolCall("calculator_9000", json.dumps({"a": 1, "b": 2}, separators=(",", ":")))
    if kind == "bad_json":
        return ModelToolCall(choice.name, '{"a": 3, "b": ')
    words = ["three", "four"]
    return ModelToolCall(choice.name, json.dumps(arguments_for(choice, words), separators=(",", ":")))


def to_json_number(value: float) -> float | int:
    return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 else value


def read_number(text: str) -> float | None:
    text = text.strip()
    if text.lower().startswith("error"):
        return None
    try:
        return float(json.loads(text)) if text else None
    except (ValueError, TypeError):
        return None


def describe(call: dict[str, Any]) -> str:
    try:
        args = json.loads(str(call.get("arguments", "")))
    except ValueError:
        return str(call.get("arguments", ""))
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items()) if isinstance(args, dict) else str(args)


# -- 4. Answering ----------------------------------------------------------------------------------------------------


def evaluate(expr: Expr) -> float:
    """Work an expression out directly (only when no tools are offered)."""
    if isinstance(expr, Num):
        return expr.value
    values = [evaluate(a) for a in expr.args]
    result = values[0]
    for v in values[1:]:
        if expr.op == "add":
            result += v
        elif expr.op == "sub":
            result -= v
        elif expr.op == "mul":
            result *= v
        else:
            result = result / v if v != 0 else math.nan
    return result


def render_answer(exprs: list[Expr], results: list[float]) -> str:
    parts = [
        format_number(r) if isinstance(e, Num) else f"{render(e)} = {format_number(r)}"
        for e, r in zip(exprs, results, strict=True)
    ]
    return " and ".join(parts) + "."


PRECEDENCE: dict[Op, int] = {"add": 1, "sub": 1, "mul": 2, "div": 2}


def render(expr: Expr) -> str:
    """Write an expression back with only the parentheses it needs: (7 + 8) * (2 + 3)."""
    if isinstance(expr, Num):
        return format_number(expr.value)
    parts = []
    for position, arg in enumerate(expr.args):
        text = render(arg)
        if isinstance(arg, Node):
            lower = PRECEDENCE[arg.op] < PRECEDENCE[expr.op]
            same_on_right = position > 0 and PRECEDENCE[arg.op] == PRECEDENCE[expr.op] and expr.op in ("sub", "div")
            text = f"({text})" if lower or same_on_right else text
        elif arg.value < 0 and position > 0:
            text = f"({text})"
        parts.append(text)
    return f" {SYMBOL[expr.op]} ".join(parts)


def format_number(value: float) -> str:
    if math.isnan(value):
        return "undefined (division by zero)"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.10g}"
