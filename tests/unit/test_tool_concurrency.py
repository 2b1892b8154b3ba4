"""What the loop records, and how it runs one turn's tool calls (the source lesson's claim through the Agent)."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentlab import Agent, ConfigurationError, run_concurrent, tool
from agentlab.records import RunResult, Span
from agentlab.tools.math import MATH_TOOLS

THREE_SUMS = "(1 + 2) * (3 + 4) * (5 + 6)"  # the first turn asks for three independent sums


@tool
async def slow_sum(a: float, b: float) -> float:
    """Add two numbers, slowly."""
    await asyncio.sleep(0.05)  # the tool's work: 50 ms, so that calls that run together overlap
    return a + b


@tool
async def slow_product(a: float, b: float) -> float:
    """Multiply two numbers, slowly."""
    await asyncio.sleep(0.05)
    return a * b


def make_agent(**changes: object) -> Agent:
    return Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, **changes)  # type: ignore[arg-type]


async def test_spans_carry_call_ids_and_tokens_and_the_batch_its_agent_and_wall_start() -> None:
    before = time.time()
    batch = await run_concurrent(make_agent(), ["(7 + 8) * (2 + 3)", "What is 12 + 30?"])
    after = time.time()
    report = batch.report
    assert report.agent_name == "calc" and all(result.agent_name == "calc" for result in batch)
    assert report.started_at_wall is not None and before <= report.started_at_wall <= after
    for result in batch:
        calls = [item["call_id"] for item in result.messages if item.get("type") == "function_call"]
        tools = [span for span in result.spans if span.kind == "tool"]
        assert calls and [span.call_id for span in tools] == calls
        models = [span for span in result.spans if span.kind == "model"]
        assert sum(span.input_tokens or 0 for span in models) == result.usage.input_tokens > 0
        assert sum(span.output_tokens or 0 for span in models) == result.usage.output_tokens > 0
        assert all(span.call_id is None for span in models)
    shifted = report.conversations[0].spans
    assert [span.call_id for span in shifted] == [span.call_id for span in batch[0].spans]


def test_a_shifted_span_keeps_its_fields() -> None:
    span = Span("tool", "sum_numbers", 5.0, 7.0, call_id="call_1")
    assert span.shifted(4.0) == Span("tool", "sum_numbers", 1.0, 3.0, call_id="call_1")


def first_turn_tools(result: RunResult) -> list[Span]:
    """The tool spans of the first turn: those that start before the second model call."""
    second_model_call = [span for span in result.spans if span.kind == "model"][1]
    return [span for span in result.spans if span.kind == "tool" and span.start < second_model_call.start]


def most_at_once(spans: list[Span]) -> int:
    """The largest number of spans open at the same moment (a span ending as another starts: not together)."""
    edges = sorted([(span.start, 1) for span in spans] + [(span.end, -1) for span in spans])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


async def run_three_sums(**settings: object) -> RunResult:
    agent = Agent(name="p", instructions="Use the tools.", tools=(slow_sum, slow_product), **settings)  # type: ignore[arg-type]
    result = await agent.run(THREE_SUMS)
    assert result.output_text.endswith("= 231.")
    return result


async def test_by_default_one_turns_calls_run_back_to_back() -> None:
    """The source lesson's claim, through the Agent with default settings: one call after another."""
    spans = first_turn_tools(await run_three_sums())
    assert len(spans) == 3, "the model should ask for the three sums in one turn (parallel_tool_calls not sent)"
    assert all(before.end <= after.start for before, after in zip(spans, spans[1:], strict=False))
    assert most_at_once(spans) == 1


async def test_tool_concurrency_none_runs_them_all_at_once() -> None:
    spans = first_turn_tools(await run_three_sums(tool_concurrency=None))
    assert len(spans) == 3 and most_at_once(spans) == 3


async def test_tool_concurrency_two_runs_at_most_two_at_once() -> None:
    result = await run_three_sums(tool_concurrency=2)
    spans = first_turn_tools(result)
    assert len(spans) == 3 and most_at_once(spans) == 2
    calls = [item["call_id"] for item in result.messages if item.get("type") == "function_call"]
    outputs = [item["call_id"] for item in result.messages if item.get("type") == "function_call_output"]
    assert outputs == calls, "outputs go back in the order of the calls"


async def test_parallel_tool_calls_false_is_sent_and_asks_one_call_per_turn() -> None:
    result = await run_three_sums(parallel_tool_calls=False, tool_concurrency=None)
    assert result.turns == 6 and len(first_turn_tools(result)) == 1


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_a_bad_tool_concurrency_is_refused_by_name(value: object) -> None:
    with pytest.raises(ConfigurationError, match="tool_concurrency"):
        make_agent(tool_concurrency=value)


def test_max_turns_true_is_not_a_number_of_turns() -> None:
    with pytest.raises(ConfigurationError, match="max_turns"):
        make_agent(max_turns=True)


@pytest.mark.parametrize("value", [1, "yes"])
def test_a_bad_parallel_tool_calls_is_refused_by_name(value: object) -> None:
    with pytest.raises(ConfigurationError, match="parallel_tool_calls"):
        make_agent(parallel_tool_calls=value)
