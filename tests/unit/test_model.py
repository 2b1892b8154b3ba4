"""The scripted math model: parsing, planning over whatever tools are offered, and robustness."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlab.offline import model
from agentlab.offline.model import ModelTurn, planned_turns, respond, user_text


def binary(name: str, description: str, a: str = "a", b: str = "b", kind: str = "number") -> dict[str, Any]:
    props = {a: {"type": kind}, b: {"type": kind}}
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": props, "required": [a, b]},
    }


def listing(name: str, description: str, field: str = "values") -> dict[str, Any]:
    props = {field: {"type": "array", "items": {"type": "number"}}}
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": props, "required": [field]},
    }


MATH = [
    binary("sum_numbers", "Add two numbers."),
    binary("multiply_numbers", "Multiply two numbers."),
    binary("subtract_numbers", "Subtract b from a."),
    binary("divide_numbers", "Divide a by b."),
]
IMPLEMENTATIONS: dict[str, Callable[[list[float]], float]] = {
    "sum_numbers": sum,
    "add": sum,
    "total": sum,
    "plus_them": sum,
    "combine": sum,
    "helper": sum,
    "multiply_numbers": lambda v: v[0] * v[1],
    "times": lambda v: v[0] * v[1],
    "product": lambda v: v[0] * v[1],
    "calc": lambda v: v[0] * v[1],
    "multiplyNumbers": lambda v: v[0] * v[1],
    "subtract_numbers": lambda v: v[0] - v[1],
    "divide_numbers": lambda v: v[0] / v[1],
}


def converse(prompt: str, tools: list[dict[str, Any]], parallel: bool, limit: int = 30) -> tuple[str, list[ModelTurn]]:
    """Play the client: run every call with a local implementation, until the model answers."""
    items: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    turns: list[ModelTurn] = []
    for turn_number in range(limit):
        turn = respond(items, tools, parallel)
        turns.append(turn)
        if not turn.calls:
            return turn.text, turns
        for i, call in enumerate(turn.calls):
            call_id = f"call_{turn_number}_{i}"
            items.append({"type": "function_call", "call_id": call_id, "name": call.name, "arguments": call.arguments})
            try:
                args = json.loads(call.arguments)
                values = next(iter(args.values())) if len(args) == 1 else list(args.values())
                output = str(IMPLEMENTATIONS[call.name]([float(v) for v in values]))
            except Exception as exc:
                output = f"error: {exc}"
            items.append({"type": "function_call_output", "call_id": call_id, "output": output})
    raise AssertionError(f"no answer after {limit} turns")


def last_number(text: str) -> float:
    return float(re.findall(r"-?\d+(?:\.\d+)?", text)[-1])


CASES = [
    ("What is 12 + 30?", 42),
    ("Add 3, 4 and 5, then multiply by 2", 24),
    ("(7 + 8) * (2 + 3)", 75),
    ("What is twenty-one times three?", 63),
    ("Sum 1.5 and 2.25", 3.75),
    ("-4 + 10", 6),
    ("What is 3 minus -2?", 5),
    ("((1 + 2) * (3 + 4)) - 5", 16),
    ("What is 10 divided by 4?", 2.5),
    ("84 / 4", 21),
    ("2 + 3 * 4", 14),
    ("6 x 7", 42),
    ("What is 6 × 7 ÷ 2?", 21),
    ("three hundred and five plus two thousand", 2305),
    ("subtract 3 from 10", 7),
    ("the product of 6 and 7", 42),
    ("Please compute the sum of 2 and 3", 5),
    ("What is negative five plus 8?", 3),
    ("Multiply 3 by 4 and add 2", 14),  # "and" + a verb is a next step, like "then"
]


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize(("prompt", "answer"), CASES)
def test_answers_are_correct_and_turns_are_planned(prompt: str, answer: float, parallel: bool) -> None:
    text, turns = converse(prompt, MATH, parallel)
    assert last_number(text) == pytest.approx(answer)
    assert planned_turns(prompt, MATH, parallel) == len(turns)


def test_independent_steps_share_a_turn_only_when_parallel() -> None:
    _, parallel_turns = converse("(7 + 8) * (2 + 3)", MATH, parallel=True)
    assert [len(t.calls) for t in parallel_turns] == [2, 1, 0]
    _, serial_turns = converse("(7 + 8) * (2 + 3)", MATH, parallel=False)
    assert [len(t.calls) for t in serial_turns] == [1, 1, 1, 0]
    text, _ = converse("What is 3 + 4, and 5 + 6?", MATH, parallel=True)
    assert text == "3 + 4 = 7 and 5 + 6 = 11."


def test_tools_are_chosen_by_name_or_description_and_filled_from_their_schema() -> None:
    tools = [binary("add", "Adds.", "x", "y"), binary("times", "Multiplies.", "p", "q")]
    turn = respond([{"role": "user", "content": "(1 + 2) * 4"}], tools, True)
    assert turn.calls == (model.ModelToolCall("add", '{"x":1,"y":2}'),)
    text, _ = converse("(1 + 2) * 4", tools, True)
    assert last_number(text) == 12
    described = [binary("plus_them", "Return the total of two numbers.", "first", "second")]
    assert last_number(converse("What is 2 + 2?", described, True)[0]) == 4


def test_a_description_alone_chooses_the_tool() -> None:
    tools = [binary("calc", "Multiplies two numbers.", "x", "y"), binary("combine", "Adds two numbers.")]
    assert model.choose_tools(tools) == {
        "mul": model.ToolChoice("calc", ("x", "y")),
        "add": model.ToolChoice("combine", ("a", "b")),
    }
    assert last_number(converse("What is 6 * (1 + 2)?", tools, True)[0]) == 18


def test_whole_words_and_the_first_operation_named_decide() -> None:
    # "additional" is not "add"; a divide tool that mentions adding in passing still divides
    misleading = [
        binary("divide_numbers", "Divide a by b; use it after you add numbers."),
        binary("helper", "Takes additional numbers and sums them."),
        binary("multiplyNumbers", ""),
    ]
    chosen = {op: choice.name for op, choice in model.choose_tools(misleading).items()}
    assert chosen == {"div": "divide_numbers", "add": "helper", "mul": "multiplyNumbers"}
    assert last_number(converse("What is 12 + 30?", misleading, False)[0]) == 42
    assert model.first_operation("subtotal_of_items") is None and model.first_operation("sub_numbers") == "sub"


def test_a_list_tool_gets_one_call_with_every_number() -> None:
    turn = respond([{"role": "user", "content": "Add 3, 4 and 5"}], [listing("total", "Sum a list.")], True)
    assert turn.calls == (model.ModelToolCall("total", '{"values":[3,4,5]}'),)


def test_missing_tools() -> None:
    no_division = MATH[:3]
    text, turns = converse("What is 84 / 4?", no_division, True)
    assert len(turns) == 1
    assert text.startswith("I need a tool that can divide, but none was offered")
    assert "sum_numbers" in text
    direct, turns = converse("(7 + 8) * (2 + 3)", [], True)
    assert direct == "(7 + 8) * (2 + 3) = 75." and len(turns) == 1


def test_not_math_gets_a_polite_answer() -> None:
    for prompt in ("What's the weather like?", "", "Tell me a story"):
        text, turns = converse(prompt, MATH, True)
        assert "arithmetic" in text and len(turns) == 1
    assert converse("hello!", MATH, True)[0].startswith("Hello!")


def test_tool_errors_end_the_conversation_with_a_report() -> None:
    text, _ = converse("What is 5 / 0?", MATH, True)
    assert text.startswith("I could not finish: divide_numbers(a=5, b=0) returned error")


@pytest.mark.parametrize(
    ("marker", "first_call"),
    [
        ("unknown_tool", ("calculator_9000", '{"a":1,"b":2}')),
        ("bad_json", ("sum_numbers", '{"a": 3, "b": ')),
        ("wrong_types", ("sum_numbers", '{"a":"three","b":"four"}')),
    ],
)
def test_mistake_markers_make_one_wrong_call_then_recover(marker: str, first_call: tuple[str, str]) -> None:
    prompt = f"What is 12 + 30? [mistake={marker}]"
    text, turns = converse(prompt, MATH, True)
    assert (turns[0].calls[0].name, turns[0].calls[0].arguments) == first_call
    assert text == "12 + 30 = 42."
    assert planned_turns(prompt, MATH, True) == len(turns) == 3


def test_a_mistake_marker_without_a_usable_tool_answers_plainly() -> None:
    weather = {
        "type": "function",
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    turn = respond([{"role": "user", "content": "What is 7? [mistake=bad_json]"}], [weather], False)
    assert turn == ModelTurn(text="7.")
    assert planned_turns("What is 7? [mistake=bad_json]", [weather], False) == 1


def test_loop_marker_never_finishes() -> None:
    with pytest.raises(AssertionError, match="no answer after 20 turns"):
        converse("What is 1 + 1? [loop]", MATH, True, limit=20)


def test_markers_are_ignored_by_the_parser() -> None:
    assert converse("What is 2 + 2? [duration=5] [fault=429x1] [id=7]", MATH, True)[0] == "2 + 2 = 4."


def test_user_text_reads_the_last_user_message() -> None:
    items = [
        {"role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "second"}, {"type": "input_text", "text": "part"}]},
    ]
    assert user_text(items) == "second part"
    assert user_text([]) == ""


def test_deterministic() -> None:
    assert converse("(7 + 8) * (2 + 3)", MATH, True) == converse("(7 + 8) * (2 + 3)", MATH, True)


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    prompt=st.text(max_size=200) | st.from_regex(r"[-+*/()0-9 .a-z\[\]=]{0,60}", fullmatch=True),
    extra_items=st.lists(JUNK, max_size=4),
    tools=st.lists(JUNK, max_size=3),
    parallel=st.booleans(),
)
def test_never_raises(prompt: str, extra_items: list[Any], tools: list[Any], parallel: bool) -> None:
    items: list[Any] = [{"role": "user", "content": prompt}, *extra_items]
    turn = respond(items, [*tools, *MATH], parallel)
    assert isinstance(turn, ModelTurn)
    assert turn.calls or turn.text
    assert planned_turns(prompt, MATH, parallel) >= 1


def test_deep_and_long_prompts_are_handled() -> None:
    deep = "(" * 60 + "1 + 1" + ")" * 60
    assert last_number(converse(deep, MATH, True)[0]) == 2
    long_sum = " + ".join(["1"] * 300)
    assert "too long" in respond([{"role": "user", "content": long_sum}], MATH, True).text


def test_source_never_evals() -> None:
    source = inspect.getsource(model)
    assert "eval(" not in source and "exec(" not in source
