"""What the loop records, and how it runs one turn's tool calls (the source lesson's claim through the Agent)."""

from __future__ import annotations

import time

from agentlab import Agent, run_concurrent
from agentlab.records import Span
from agentlab.tools.math import MATH_TOOLS


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
