"""The Agent and its loop, against the real offline server through the real openai client.

Isolation, model mistakes and MaxTurnsExceeded are in tests/reliability."""

from __future__ import annotations

import asyncio
import re

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import ResponseFunctionToolCall

from agentlab import Agent, ConfigurationError, default_client, tool
from agentlab.agent import check_prompts, describe_arguments, start_transcript
from agentlab.errors import AgentLabError, PromptError, translate_error
from agentlab.records import AgentEvent
from agentlab.tools.math import MATH_TOOLS

INSTRUCTIONS = "You are a careful math assistant. Use the tools."


def make_agent(**changes: object) -> Agent:
    return Agent(name="calc", instructions=INSTRUCTIONS, tools=MATH_TOOLS, **changes)  # type: ignore[arg-type]


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
async def test_answers_are_correct(prompt: str, answer: float) -> None:
    result = await make_agent().run(prompt)
    assert numbers_in(result.output_text)[-1] == answer


async def test_transcript_spans_usage_and_turns() -> None:
    result = await make_agent().run("(7 + 8) * (2 + 3)")
    kinds = [item.get("type", "message") for item in result.messages]
    assert kinds[0] == "message" and result.messages[0] == {"role": "user", "content": "(7 + 8) * (2 + 3)"}
    # parallel_tool_calls not sent (the API's default): both sums in turn 1, the product in turn 2, then the answer
    assert result.turns == 3
    assert kinds.count("function_call") == kinds.count("function_call_output") == 3
    assert kinds.count("reasoning") == 3
    calls = {i["call_id"] for i in result.messages if i.get("type") == "function_call"}
    outputs = {i["call_id"] for i in result.messages if i.get("type") == "function_call_output"}
    assert calls == outputs
    assert [s.kind for s in result.spans] == ["model", "tool", "tool", "model", "tool", "model"]
    assert all(s.end >= s.start for s in result.spans)
    assert result.started_at <= result.spans[0].start and result.spans[-1].end <= result.ended_at
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.duration == pytest.approx(result.ended_at - result.started_at)


async def test_tool_concurrency_none_runs_one_turns_calls_together() -> None:
    slow_agent = Agent(name="p", instructions=INSTRUCTIONS, tools=(slow_sum, slow_product), tool_concurrency=None)
    result = await slow_agent.run("(7 + 8) * (2 + 3)")
    assert result.turns == 3
    first_turn_tools = [s for s in result.spans if s.kind == "tool"][:2]
    a, b = first_turn_tools
    assert a.start < b.end and b.start < a.end, "the two tool calls of one turn should overlap"
    # (one after another by default, and at most k at once: tests/unit/test_tool_concurrency.py)


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


async def test_events_arrive_in_order() -> None:
    events: list[AgentEvent] = []

    await make_agent().run("What is 12 + 30?", on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds == ["model_start", "model_end", "tool_start", "tool_end", "model_start", "model_end"]
    assert events[2].name == "sum_numbers" and events[2].detail == "a=12, b=30"
    assert events[3].detail == "42"
    assert events[-1].detail == "answer"


async def test_a_tool_that_raises_is_reported_to_the_model() -> None:
    result = await make_agent().run("What is 5 / 0?")
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
    with pytest.raises(TypeError, match="wrap it in") as caught:
        check_prompts("just one string")
    assert isinstance(caught.value, PromptError) and isinstance(caught.value, AgentLabError)  # one tree


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


def test_describe_arguments_never_raises() -> None:
    assert describe_arguments('{"a":3,"b":4}') == "a=3, b=4"
    assert describe_arguments("not json") == "not json"
    # what json.loads refuses with other errors than JSONDecodeError: shown as it came, never raised
    huge = '{"a": ' + "9" * 5000 + "}"  # ValueError: exceeds the limit for int string conversion
    deep = "[" * 100_000 + "]" * 100_000  # RecursionError
    assert describe_arguments(huge) == huge and describe_arguments(deep) == deep


async def test_logging_does_not_change_outcomes() -> None:
    """A 5000-digit argument is the model's mistake: with log=True as without, it goes back to the model."""
    huge = "9" * 5000

    @tool
    def echo(a: int) -> int:
        """Return a."""
        return a

    async def one(log: bool) -> list[str]:
        agent = Agent(name="e", instructions="", tools=(echo,))
        call = ResponseFunctionToolCall(type="function_call", call_id="c1", name="echo", arguments=f'{{"a": {huge}}}')
        handler = (lambda event: None) if log else None
        item = await agent.run_call(call, [], handler)
        return [item["output"][:40]]

    assert await one(log=True) == await one(log=False)
    assert (await one(log=True))[0].startswith("error: ")


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high"])
async def test_reasoning_effort_is_sent_as_reasoning_effort(effort: str) -> None:
    agent = make_agent(reasoning_effort=effort)
    response = await agent.create_response(default_client(), [{"role": "user", "content": "What is 1 + 1?"}])
    assert (response.reasoning.effort if response.reasoning else None) == effort


def test_reasoning_effort_is_checked_and_left_out_when_unset() -> None:
    with pytest.raises(ConfigurationError, match=r"reasoning_effort='extreme' is not known.*'minimal'"):
        make_agent(reasoning_effort="extreme")
    assert make_agent().reasoning_effort is None


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "Check OPENAI_API_KEY"),
        (404, "Check the model name"),
        (413, "Send a shorter conversation"),
        (429, "run_bounded(max_concurrency=...)"),
        (422, "rejected the request (422)"),
        (503, "failed (503) after the client's 2 retries"),
    ],
)
def test_each_status_has_its_advice(status: int, advice: str) -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1/responses")
    response = httpx.Response(status, request=request, json={"message": "no"})
    error = openai.APIStatusError("no", response=response, body={"message": "no"})
    translated = translate_error(error, AsyncOpenAI(base_url="http://127.0.0.1/v1", api_key="k", max_retries=2))
    assert advice in str(translated) and translated.status_code == status
