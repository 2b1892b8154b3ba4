"""The Agent and its loop, against the real offline server through the real openai client.

Isolation, model mistakes and MaxTurnsExceeded are in tests/reliability."""

from __future__ import annotations

import asyncio
import re

import pytest

from agentlab import Agent, ConfigurationError, RunResult, tool
from agentlab.agent import check_prompts, describe_arguments, start_transcript
from agentlab.results import AgentEvent
from agentlab.tools.math import MATH_TOOLS

INSTRUCTIONS = "You are a careful math assistant. Use the tools."


def make_agent(**changes: object) -> Agent:
    return Agent(name="calc", instructions=INSTRUCTIONS, tools=MATH_TOOLS, **changes)  # type: ignore[arg-type]


def run(agent: Agent, prompt: str) -> RunResult:
    return asyncio.run(agent.run(prompt))


def numbers_in(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("What is 12 + 30?", 42),
        ("Add 3, 4 and 5, then multiply by 2", 24),
        ("(7 + 8) * (2 + 3)", 75),
        ("What is twenty-one times three?", 63),
        ("Sum 1.5 and 2.25", 3.75),
        ("What is 84 / 4?", 21),
        ("((1 + 2) * (3 + 4)) - 5", 16),
    ],
)
def test_answers_are_correct(prompt: str, answer: float) -> None:
    result = run(make_agent(), prompt)
    assert numbers_in(result.output_text)[-1] == answer


def test_transcript_spans_usage_and_turns() -> None:
    result = run(make_agent(), "(7 + 8) * (2 + 3)")
    kinds = [item.get("type", "message") for item in result.messages]
    assert kinds[0] == "message" and result.messages[0] == {"role": "user", "content": "(7 + 8) * (2 + 3)"}
    # one call per turn without parallel_tool_calls: 3 tool turns and a final answer
    assert result.turns == 4
    assert kinds.count("function_call") == kinds.count("function_call_output") == 3
    assert kinds.count("reasoning") == 4
    calls = {i["call_id"] for i in result.messages if i.get("type") == "function_call"}
    outputs = {i["call_id"] for i in result.messages if i.get("type") == "function_call_output"}
    assert calls == outputs
    assert [s.kind for s in result.spans] == ["model", "tool", "model", "tool", "model", "tool", "model"]
    assert all(s.end >= s.start for s in result.spans)
    assert result.started_at <= result.spans[0].start and result.spans[-1].end <= result.ended_at
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.duration == pytest.approx(result.ended_at - result.started_at)


def test_parallel_tool_calls_run_together_in_one_turn() -> None:
    slow_agent = Agent(name="p", instructions=INSTRUCTIONS, tools=(slow_sum, slow_product), parallel_tool_calls=True)
    result = run(slow_agent, "(7 + 8) * (2 + 3)")
    assert result.turns == 3
    first_turn_tools = [s for s in result.spans if s.kind == "tool"][:2]
    a, b = first_turn_tools
    assert a.start < b.end and b.start < a.end, "the two tool calls of one turn should overlap"


@tool
async def slow_sum(a: float, b: float) -> float:
    """Add two numbers, slowly."""
    await asyncio.sleep(0.05)
    return a + b


@tool
async def slow_product(a: float, b: float) -> float:
    """Multiply two numbers, slowly."""
    await asyncio.sleep(0.05)
    return a * b


def test_events_arrive_in_order() -> None:
    events: list[AgentEvent] = []

    async def main() -> None:
        await make_agent().run("What is 12 + 30?", on_event=events.append)

    asyncio.run(main())
    kinds = [e.kind for e in events]
    assert kinds == ["model_start", "model_end", "tool_start", "tool_end", "model_start", "model_end"]
    assert events[2].name == "sum_numbers" and events[2].detail == "a=12, b=30"
    assert events[3].detail == "42"
    assert events[-1].detail == "answer"


def test_a_tool_that_raises_is_reported_to_the_model() -> None:
    result = run(make_agent(), "What is 5 / 0?")
    outputs = [i["output"] for i in result.messages if i.get("type") == "function_call_output"]
    assert outputs == ["error: divide_numbers raised ZeroDivisionError: cannot divide by zero"]
    assert "could not" in result.output_text.lower()


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_turns must be"):
        make_agent(max_turns=0)
    with pytest.raises(ConfigurationError, match="share a name"):
        Agent(name="x", instructions="", tools=(MATH_TOOLS[0], MATH_TOOLS[0]))
    with pytest.raises(TypeError, match="a prompt must be a str"):
        start_transcript(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        check_prompts(["ok", 3])
    with pytest.raises(TypeError, match="wrap it in"):
        check_prompts("just one string")


def test_plain_functions_become_tools_and_agent_stays_frozen() -> None:
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    agent = Agent(name="x", instructions="", tools=[add])  # type: ignore[arg-type]
    assert agent.tools[0].name == "add" and agent.tool_schemas[0]["name"] == "add"
    with pytest.raises(AttributeError):
        agent.name = "y"  # type: ignore[misc]
    # frozen and hashable, so an Agent can be a dict key (a cache of results per agent, say)
    assert hash(agent) == hash(Agent(name="x", instructions="", tools=agent.tools))
    assert {agent: 1}[agent] == 1


def test_describe_arguments() -> None:
    assert describe_arguments('{"a":3,"b":4}') == "a=3, b=4"
    assert describe_arguments("not json") == "not json"
