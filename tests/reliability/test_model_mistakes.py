"""The model's mistakes go back to it as "error: …" text, and the conversation still finishes."""

from __future__ import annotations

import asyncio

import pytest

from agentlab import Agent, MaxTurnsExceeded, RunResult, tool
from agentlab.tools.math import MATH_TOOLS, multiply_numbers

AGENT = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS)


def outputs(result: RunResult) -> list[str]:
    return [m["output"] for m in result.messages if m.get("type") == "function_call_output"]


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("unknown_tool", "error: there is no tool named 'calculator_9000'; the tools are: sum_numbers, "),
        ("bad_json", "error: the arguments for sum_numbers are not valid JSON"),
        ("wrong_types", 'error: sum_numbers: parameter a must be number, got "three"'),
    ],
)
def test_mistakes_are_reported_to_the_model(marker: str, error: str) -> None:
    result = asyncio.run(AGENT.run(f"What is 12 + 30? [mistake={marker}]"))
    print(f"\n{marker}: {outputs(result)[0]!r} → {result.output_text!r}")
    assert outputs(result)[0].startswith(error)
    assert outputs(result)[1] == "42"
    assert result.output_text == "12 + 30 = 42."


def test_a_tool_that_raises_is_reported_and_the_conversation_finishes() -> None:
    @tool
    def sum_numbers(a: float, b: float) -> float:
        """Add two numbers (broken)."""
        raise ValueError("the adder is out of order")

    broken = Agent(name="calc", instructions="", tools=(sum_numbers, multiply_numbers))
    result = asyncio.run(broken.run("What is 2 + 2?"))
    assert outputs(result) == ["error: sum_numbers raised ValueError: the adder is out of order"]
    assert result.output_text.startswith("I could not finish: sum_numbers(a=2, b=2) returned error")


def test_max_turns_carries_the_partial_transcript() -> None:
    looping = Agent(name="calc", instructions="", tools=MATH_TOOLS, max_turns=4)
    with pytest.raises(MaxTurnsExceeded) as caught:
        asyncio.run(looping.run("What is 1 + 1? [loop]"))
    transcript = caught.value.transcript
    kinds = [m.get("type", "message") for m in transcript]
    print(f"\nMaxTurnsExceeded after 4 turns: transcript of {len(transcript)} items")
    assert kinds == ["message"] + ["reasoning", "function_call", "function_call_output"] * 4
    assert all(m["output"] == "2" for m in transcript if m.get("type") == "function_call_output")
