"""agentlab.traces: the Chrome trace event by event against the records, and the OpenTelemetry spans through the
SDK's own in-memory exporter. Batches run on the in-process transport (no server), or are built from records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agentlab import Agent, make_client, offline, run_settled, tool
from agentlab.records import Batch, BatchReport, ConversationTiming, Fulfilled, Outcome, RunResult, Span, Usage
from agentlab.tools.math import MATH_TOOLS
from agentlab.traces import export_opentelemetry, to_chrome_trace, write_chrome_trace

MS = 1000  # µs: the trace's times must match the records within 1 ms


@tool
async def slow_sum(a: float, b: float) -> float:
    """Add two numbers, slowly."""
    await asyncio.sleep(0.02)  # 20 ms, so that the calls of one turn overlap when they run together
    return a + b


def in_process_client() -> AsyncOpenAI:
    """The real openai client on the in-process transport; no retries, so that the 500 fails at once."""
    return make_client(max_retries=0, http_client=httpx.AsyncClient(transport=offline.transport()))


@pytest.fixture
async def batch() -> Batch[Outcome]:
    """Three conversations: one with three tool calls at once, one that fails (a 500), one answered directly."""
    agent = Agent(
        name="calc",
        instructions="Use the tools.",
        tools=(slow_sum, *MATH_TOOLS[1:]),
        tool_concurrency=None,
        client=in_process_client(),
    )
    prompts = ["(1 + 2) * (3 + 4) * (5 + 6)", "What is 2 + 3? [fault=500]", "Hello there"]
    return await run_settled(agent, prompts)


def complete_events(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X"]


def track_names(trace: dict[str, Any]) -> dict[int, str]:
    return {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}


def test_chrome_trace_holds_every_recorded_span_at_its_time_on_its_conversations_tracks(batch: Batch[Outcome]) -> None:
    trace = to_chrome_trace(batch)
    assert trace["displayTimeUnit"] == "ms" and json.loads(json.dumps(trace)) == trace
    names = track_names(trace)
    events = complete_events(trace)
    report = batch.report
    # one bar per conversation plus one per recorded span: nothing lost, nothing made up
    assert len(events) == report.n + sum(len(c.spans) for c in report.conversations)
    for conversation in report.conversations:
        tracks = {tid for tid, name in names.items() if name.split(" · ")[0] == f"conv {conversation.index}"}
        mine = [e for e in events if e["tid"] in tracks]
        whole = [e for e in mine if e["cat"] == "conversation"]
        assert len(whole) == 1 and names[whole[0]["tid"]] == f"conv {conversation.index}"
        assert abs(whole[0]["ts"] - conversation.start * 1e6) < MS
        assert abs(whole[0]["ts"] + whole[0]["dur"] - conversation.end * 1e6) < MS
        bars = sorted((e for e in mine if e["cat"] != "conversation"), key=lambda e: (e["ts"], e["name"]))
        spans = sorted(conversation.spans, key=lambda s: (s.start, s.name))
        assert [(e["cat"], e["name"]) for e in bars] == [(s.kind, s.name) for s in spans]
        for event, span in zip(bars, spans, strict=True):
            assert abs(event["ts"] - span.start * 1e6) < MS and abs(event["dur"] - span.duration * 1e6) < MS
            assert event["args"].get("call_id") == span.call_id
            assert event["args"].get("input_tokens") == span.input_tokens
    tool_tracks = {e["tid"] for e in events if e["cat"] == "tool" and names[e["tid"]].startswith("conv 0")}
    assert len(tool_tracks) >= 2, "the three tool calls that ran at once share no track"


def test_no_two_bars_overlap_partly_on_one_track(batch: Batch[Outcome]) -> None:
    by_track: dict[int, list[dict[str, Any]]] = {}
    for event in complete_events(to_chrome_trace(batch)):
        by_track.setdefault(event["tid"], []).append(event)
    for bars in by_track.values():
        for a in bars:
            for b in bars:
                a_end, b_end = a["ts"] + a["dur"], b["ts"] + b["dur"]
                disjoint = a_end <= b["ts"] or b_end <= a["ts"]
                nested = (a["ts"] <= b["ts"] and b_end <= a_end) or (b["ts"] <= a["ts"] and a_end <= b_end)
                assert disjoint or nested, f"{a['name']} and {b['name']} cross on track {a['tid']}"


def test_a_rejected_conversation_shows_its_error(batch: Batch[Outcome]) -> None:
    trace = to_chrome_trace(batch)
    names = track_names(trace)
    failed = [e for e in complete_events(trace) if e["cat"] == "conversation" and e["args"]["status"] == "rejected"]
    assert [names[e["tid"]] for e in failed] == ["conv 1"]
    assert failed[0]["args"]["error"].startswith("BackendError: ")
    marker = [e for e in trace["traceEvents"] if e["ph"] == "i"]
    assert [(m["name"], m["tid"]) for m in marker] == [("✗ BackendError", failed[0]["tid"])]


def test_write_chrome_trace_writes_the_same_object(batch: Batch[Outcome], tmp_path: Path) -> None:
    path = write_chrome_trace(batch, tmp_path / "batch.json")
    assert json.loads(path.read_text()) == to_chrome_trace(batch)


def test_waits_are_drawn_inside_the_model_call_they_delayed() -> None:
    model = Span("model", "gpt-5-mini", 0.10, 0.60, input_tokens=10, output_tokens=3)
    wait = Span("wait", "budget", 0.10, 0.40)
    tools = (Span("tool", "sum_numbers", 0.61, 0.70, call_id="a"), Span("tool", "sum_numbers", 0.62, 0.75, call_id="b"))
    batch = batch_of(ConversationTiming(0, 0.1, 0.8, "fulfilled", turns=2, spans=(model, wait, *tools)))
    events = complete_events(to_chrome_trace(batch))
    by_name = {(e["name"], e["args"].get("call_id")): e for e in events}
    assert by_name[("budget wait", None)]["tid"] == by_name[("gpt-5-mini", None)]["tid"]  # nested, one track
    assert by_name[("sum_numbers", "a")]["tid"] != by_name[("sum_numbers", "b")]["tid"]  # crossing: two tracks


def test_a_tool_call_that_ran_within_another_is_not_drawn_as_its_child() -> None:
    outer, inner = Span("tool", "slow", 0.1, 0.9, call_id="a"), Span("tool", "fast", 0.2, 0.3, call_id="b")
    batch = batch_of(ConversationTiming(0, 0.0, 1.0, "fulfilled", turns=2, spans=(outer, inner)))
    trace = to_chrome_trace(batch)
    tracks = {e["name"]: track_names(trace)[e["tid"]] for e in complete_events(trace)}
    assert tracks == {"calc": "conv 0", "slow": "conv 0", "fast": "conv 0 · 2"}


def batch_of(*timings: ConversationTiming, wall: float = 1_000_000.0) -> Batch[Outcome]:
    """A batch made from records directly, with no result values behind them."""
    report = BatchReport("run_settled", 1.0, timings, agent_name="calc", started_at_wall=wall)
    return Batch([], report)


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def test_opentelemetry_spans_follow_the_genai_conventions(
    batch: Batch[Outcome], exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = exporter
    count = export_opentelemetry(batch, tracer_provider=provider)
    spans = memory.get_finished_spans()
    report = batch.report
    assert count == len(spans) == report.n + sum(len(c.spans) for c in report.conversations)
    roots = sorted((s for s in spans if s.parent is None), key=index_of)
    assert [r.name for r in roots] == ["invoke_agent calc"] * 3
    zero = round(report.started_at_wall * 1e9)  # type: ignore[operator]
    for root, conversation in zip(roots, report.conversations, strict=True):
        assert root.kind == SpanKind.INTERNAL
        assert root.attributes is not None and root.attributes["gen_ai.operation.name"] == "invoke_agent"
        assert root.attributes["gen_ai.agent.name"] == "calc" and root.attributes["gen_ai.provider.name"] == "openai"
        assert root.start_time == zero + round(conversation.start * 1e9)
        assert root.end_time == zero + round(conversation.end * 1e9)
        children = sorted((s for s in spans if s.parent and s.parent.span_id == root.context.span_id), key=start_of)
        assert all(child.context.trace_id == root.context.trace_id for child in children)
        recorded = sorted(conversation.spans, key=lambda s: s.start)
        assert [c.name for c in children] == [
            f"chat {s.name}" if s.kind == "model" else f"execute_tool {s.name}" for s in recorded
        ]
        for child, span in zip(children, recorded, strict=True):
            check_child(child, span, zero)


def index_of(span: ReadableSpan) -> int:
    index = (span.attributes or {})["agentlab.conversation.index"]
    assert isinstance(index, int)
    return index


def start_of(span: ReadableSpan) -> int:
    return span.start_time or 0


def check_child(child: ReadableSpan, span: Span, zero: int) -> None:
    assert child.start_time == zero + round(span.start * 1e9) and child.end_time == zero + round(span.end * 1e9)
    attributes = dict(child.attributes or {})
    if span.kind == "model":
        assert child.kind == SpanKind.CLIENT
        assert attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": span.name,
            "gen_ai.usage.input_tokens": span.input_tokens,
            "gen_ai.usage.output_tokens": span.output_tokens,
        }
    else:
        assert child.kind == SpanKind.INTERNAL and span.call_id
        assert attributes == {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": span.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": span.call_id,
        }


def test_a_rejected_conversation_has_status_error_and_its_error_type(
    batch: Batch[Outcome], exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = exporter
    export_opentelemetry(batch, tracer_provider=provider)
    roots = [s for s in memory.get_finished_spans() if s.parent is None]
    failed = [r for r in roots if r.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes is not None
    assert failed[0].attributes["agentlab.conversation.index"] == 1
    assert failed[0].attributes["error.type"] == "BackendError"
    assert (failed[0].status.description or "").startswith("BackendError: ")
    assert all("error.type" not in (r.attributes or {}) for r in roots if r is not failed[0])
    assert sum(r.status.status_code == StatusCode.UNSET for r in roots) == 2


def test_no_message_content_is_exported(
    batch: Batch[Outcome], exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = exporter
    export_opentelemetry(batch, tracer_provider=provider)
    keys = {key for span in memory.get_finished_spans() for key in (span.attributes or {})}
    assert not {k for k in keys if "message" in k or "content" in k or "arguments" in k or "result" in k}


async def test_a_run_result_alone_is_one_conversation(exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=in_process_client())
    result = await agent.run("What is 12 + 30?")
    trace = to_chrome_trace(result)
    events = complete_events(trace)
    assert len(events) == 1 + len(result.spans) and set(track_names(trace).values()) == {"conv 0"}
    assert events[0]["ts"] == 0 and abs(events[0]["dur"] - result.duration * 1e6) < MS
    provider, memory = exporter
    assert export_opentelemetry(result, tracer_provider=provider) == 1 + len(result.spans)
    root = next(s for s in memory.get_finished_spans() if s.parent is None)
    assert root.attributes is not None and root.attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    assert (root.end_time or 0) - (root.start_time or 0) == pytest.approx(result.duration * 1e9, abs=1000)


def test_a_batch_where_every_conversation_failed_is_placed_at_its_wall_clock_start(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    timing = ConversationTiming(0, 0.0, 0.5, "rejected", error="ConversationTimeout: took longer than 0.5 s")
    provider, memory = exporter
    export_opentelemetry(batch_of(timing, wall=1_700_000_000.25), tracer_provider=provider)
    (root,) = memory.get_finished_spans()
    # a float time.time() holds about a quarter of a microsecond at this size
    assert root.start_time == pytest.approx(1_700_000_000_250_000_000, abs=1000)
    assert root.end_time == pytest.approx(1_700_000_000_750_000_000, abs=1000)
    assert root.attributes is not None and root.attributes["error.type"] == "ConversationTimeout"


@pytest.mark.parametrize("bad", [[], "batch.json", None, [RunResult("4", [], (), Usage(), 1, 0.0, 1.0)]])
def test_anything_but_a_batch_or_a_run_result_is_a_clear_type_error(bad: object) -> None:
    for export in (to_chrome_trace, export_opentelemetry):
        with pytest.raises(TypeError, match=r"a trace is made from a Batch .* or a RunResult, got "):
            export(bad)


def test_a_fulfilled_outcome_is_read_through_its_value() -> None:
    result = RunResult("7", [], (), Usage(5, 2), 1, 10.0, 10.5, agent_name="calc")
    timing = ConversationTiming(0, 0.0, 0.5, "fulfilled", turns=1)
    batch = Batch([Fulfilled(result)], BatchReport("run_settled", 0.5, (timing,), "calc", 1_000.0))
    (whole,) = complete_events(to_chrome_trace(batch))
    assert whole["args"] == {"index": 0, "turns": 1, "status": "fulfilled", "input_tokens": 5, "output_tokens": 2}
