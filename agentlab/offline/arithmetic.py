"""Arithmetic for the scripted model: prompt text → tokens → expression trees → numbers → words.

- ``tokenize``: number words become numbers ("twenty-one" → 21.0, "three hundred and five" → 305.0), operator
  words become symbols ("plus" → "+", "multiplied by" → "*"), and control markers such as ``[duration=5]`` are
  not words at all, so a marker's number is never read as part of the sum.
- ``parse_prompt``: numbers, + - * / and parentheses, and verb phrases such as "Add 3, 4 and 5, then multiply
  by 2", "the product of 6 and 7", "subtract 3 from 10". Several questions in one prompt ("What is 3 + 4, and
  5 + 6?") become several trees. It never uses ``eval``.
- ``evaluate``, ``render_answer``: a tree's value, and the answer in words.

``OPERATIONS`` is the one table of the four operations: how each is written, named and ranked.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from agentlab.offline.markers import blank_markers

__all__ = ["Op", "OPERATIONS", "Num", "Node", "Expr", "ParseError", "TooLong", "tokenize", "parse_prompt"]
__all__ += ["operations", "evaluate", "render_answer"]

Op: TypeAlias = Literal["add", "sub", "mul", "div"]


@dataclass(frozen=True, slots=True)
class Operation:
    symbol: str  # how an answer writes it: "+"
    verb: str  # how the model names it to a person: "add"
    precedence: int  # 2 binds tighter than 1
    prompt_verbs: tuple[str, ...]  # the words that ask for it in a prompt: "Sum 1.5 and 2.25"
    keywords: str  # the whole words (a regex) that name it in a tool's name or description


OPERATIONS: dict[Op, Operation] = {
    "add": Operation(
        "+", "add", 1, ("add", "sum", "total"), r"add(?:s|ed|ing|ition)?|sum(?:s|med|ming)?|plus|total(?:s)?"
    ),
    "sub": Operation("-", "subtract", 1, ("subtract", "difference"), r"subtract(?:s|ed|ing|ion)?|minus|difference|sub"),
    "mul": Operation(
        "*", "multiply", 2, ("multiply", "product"), r"multipl(?:y|ies|ied|ying|ication)|times|product|mul"
    ),
    "div": Operation(
        "/", "divide", 2, ("divide", "quotient"), r"divid(?:e|es|ed|ing)|division|quotient|div|ratio|over"
    ),
}
VERBS: dict[str, Op] = {verb: op for op, operation in OPERATIONS.items() for verb in operation.prompt_verbs}
SEPARATORS = {",", "and", "by", "from", "to", "with"}
MAX_PROMPT = 20_000  # characters (about 5,000 tokens): the model reads no further, so no prompt can hold it long
MAX_WORDS = 2_000  # words, numbers and symbols: a few hundred steps at most (a plan has at most 200)
MAX_DEPTH = 100  # parentheses inside parentheses (each level is six Python frames of the parser)


@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class Node:
    op: Op
    args: tuple[Expr, ...]


Expr: TypeAlias = Num | Node


class ParseError(Exception):
    """The prompt holds no calculation the model can read."""


class TooLong(ParseError):
    """The prompt is longer, or its arithmetic deeper, than the model reads: it says so instead of trying."""


# -- Text → tokens ----------------------------------------------------------------------------------------------


Tokens: TypeAlias = list[str | float]
HYPHENATED = re.compile(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-(?=[a-z])")
TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+|[-+*/×÷(),]", re.IGNORECASE)
INFIX_WORDS = {"plus": "+", "minus": "-", "times": "*", "x": "*", "over": "/", "×": "*", "÷": "/"}
UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}


def tokenize(text: str, limit: int | None = None) -> Tokens:
    """Words, symbols and numbers; number words become numbers ("twenty-one" → 21.0). Markers are not words.

    With a ``limit``, it reads at most ``limit + 1`` words: enough for the caller to see the text is too long.
    """
    text = blank_markers(text).lower().replace("multiplied by", "times").replace("divided by", "over")
    found = TOKEN.finditer(HYPHENATED.sub(r"\1 ", text))  # "twenty-one" → "twenty one"
    words = [match.group() for match in itertools.islice(found, None if limit is None else limit + 1)]
    tokens: Tokens = []
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


# -- Tokens → expression trees ------------------------------------------------------------------------------------


def parse_prompt(text: str) -> list[Expr]:
    """All the calculations a prompt asks for. ParseError when it holds none, TooLong when it is too long."""
    if len(text) > MAX_PROMPT:
        raise TooLong(f"longer than {MAX_PROMPT} characters")
    tokens = tokenize(text, MAX_WORDS)
    if len(tokens) > MAX_WORDS:
        raise TooLong(f"more than {MAX_WORDS} words")
    if not has_number(tokens):
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


def parse_clause(tokens: Tokens, previous: Expr | None) -> list[Expr]:
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


def split(tokens: Tokens, separators: set[str]) -> list[Tokens]:
    """Split at separator words that are outside parentheses."""
    parts: list[Tokens] = [[]]
    depth = 0
    for token in tokens:
        depth += (token == "(") - (token == ")")
        if depth == 0 and isinstance(token, str) and token in separators:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def has_number(tokens: Tokens) -> bool:
    return any(isinstance(t, float) for t in tokens)


def parse_infix(tokens: Tokens) -> Expr:
    """Recursive descent over + - * / and parentheses; filler words are skipped.

    A cursor walks the symbols once (no copies of what is left), so a long chain costs its length, not its
    square; parentheses nest at most ``MAX_DEPTH`` deep.
    """
    cursor = Cursor([t for t in tokens if isinstance(t, float) or t in "+-*/()"])
    expr = parse_sum(cursor)
    if not cursor.done:
        raise ParseError(f"unexpected {cursor.peek()!r}")
    return expr


SUM_OPS: dict[str, Op] = {"+": "add", "-": "sub"}
PRODUCT_OPS: dict[str, Op] = {"*": "mul", "/": "div"}


class Cursor:
    """The symbols of one expression and the position of the next one to read."""

    def __init__(self, symbols: Tokens) -> None:
        self.symbols, self.at, self.depth = symbols, 0, 0

    @property
    def done(self) -> bool:
        return self.at >= len(self.symbols)

    def peek(self) -> str | float | None:
        return None if self.done else self.symbols[self.at]

    def take(self) -> str | float:
        if self.done:
            raise ParseError("expression ends too early")
        self.at += 1
        return self.symbols[self.at - 1]


def parse_sum(cursor: Cursor) -> Expr:
    return parse_chain(cursor, SUM_OPS, parse_product)


def parse_product(cursor: Cursor) -> Expr:
    return parse_chain(cursor, PRODUCT_OPS, parse_unary)


def parse_chain(cursor: Cursor, ops: dict[str, Op], parse_operand: Callable[[Cursor], Expr]) -> Expr:
    """A left-associative chain of operands joined by the operators in ``ops``: 1 - 2 - 3 is (1 - 2) - 3."""
    left = parse_operand(cursor)
    while isinstance(symbol := cursor.peek(), str) and symbol in ops:
        cursor.take()
        left = Node(ops[symbol], (left, parse_operand(cursor)))
    return left


def parse_unary(cursor: Cursor) -> Expr:
    """Signs, then a number or a parenthesized sum: ``--3`` is 3, ``-(1 + 2)`` is 0 - (1 + 2)."""
    signs = []
    while cursor.peek() in ("-", "+"):
        signs.append(cursor.take())
    expr = parse_primary(cursor)
    for sign in reversed(signs):
        if sign == "-":
            expr = Num(-expr.value) if isinstance(expr, Num) else Node("sub", (Num(0.0), expr))
    return expr


def parse_primary(cursor: Cursor) -> Expr:
    head = cursor.take()
    if isinstance(head, float):
        return Num(head)
    if head != "(":
        raise ParseError(f"unexpected {head!r}")
    if cursor.depth >= MAX_DEPTH:
        raise TooLong("parentheses nested too deeply")
    cursor.depth += 1
    inner = parse_sum(cursor)
    cursor.depth -= 1
    if cursor.take() != ")":
        raise ParseError("missing )")
    return inner


def operations(expr: Expr) -> set[Op]:
    """The operations an expression needs."""
    return set() if isinstance(expr, Num) else {expr.op}.union(*(operations(a) for a in expr.args))


# -- Trees → numbers → words --------------------------------------------------------------------------------------


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
    """``"(7 + 8) * (2 + 3) = 75."``; several results are joined with "and"."""
    parts = [
        format_number(r) if isinstance(e, Num) else f"{render(e)} = {format_number(r)}"
        for e, r in zip(exprs, results, strict=True)
    ]
    return " and ".join(parts) + "."


def render(expr: Expr) -> str:
    """Write an expression back with only the parentheses it needs: (7 + 8) * (2 + 3)."""
    if isinstance(expr, Num):
        return format_number(expr.value)
    rank = OPERATIONS[expr.op].precedence
    parts = []
    for position, arg in enumerate(expr.args):
        text = render(arg)
        if isinstance(arg, Node):
            lower = OPERATIONS[arg.op].precedence < rank
            same_on_right = position > 0 and OPERATIONS[arg.op].precedence == rank and expr.op in ("sub", "div")
            text = f"({text})" if lower or same_on_right else text
        elif arg.value < 0 and position > 0:
            text = f"({text})"
        parts.append(text)
    return f" {OPERATIONS[expr.op].symbol} ".join(parts)


def format_number(value: float) -> str:
    if math.isnan(value):
        return "undefined (division by zero)"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.10g}"
