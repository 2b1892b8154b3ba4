"""A batch's timeline in the tools engineers already use: a Chrome/Perfetto trace, and OpenTelemetry spans.

The records hold everything (``RunResult.spans``, the ``BatchReport``); this module only reads them.
- ``to_chrome_trace(batch)`` is the Trace Event Format object (``{"traceEvents": [...]}``) that Perfetto
  (ui.perfetto.dev, in your browser) opens, and ``write_chrome_trace(batch, path)`` writes it. One track per
  conversation, holding its model calls, tool calls and waits as complete events (``"ph": "X"``), with
  ``ts``/``dur`` in microseconds from the batch's start.
- ``export_opentelemetry(batch, tracer_provider=None)`` sends the same batch as OpenTelemetry spans that follow
  the GenAI semantic conventions: ``invoke_agent {agent}`` per conversation, with ``chat {model}`` and
  ``execute_tool {tool}`` under it. Message content is left out, as the conventions ask (it is opt-in).
  It needs ``pip install 'agentlab[otel]'``; ``import agentlab`` does not load OpenTelemetry.
Both take a ``Batch`` (what the runners return) or a single ``RunResult``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.errors import ConfigurationError
from agentlab.records import Batch, ConversationTiming, Fulfilled, Rejected, RunResult, Span, Usage

if TYPE_CHECKING:
    from opentelemetry.trace import SpanKind, Tracer, TracerProvider

__all__ = ["to_chrome_trace", "write_chrome_trace", "export_opentelemetry"]

PROVIDER = "openai"  # gen_ai.provider.name: the Responses API's, which the offline server speaks too


# -- What a trace needs from the records ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation as a trace draws it: times in seconds from the batch's start."""

    index: int
    start: float
    end: float
    turns: int
    spans: tuple[Span, ...]
    usage: Usage | None = None
    error_type: str | None = None  # the exception's class name, for a conversation that failed
    error: str | None = None  # "BackendError: the model server failed …"


@dataclass(frozen=True, slots=True)
class Timeline:
    """A batch (or one run) as a trace draws it."""

    runner: str
    agent_name: str
    started_at_wall: float  # time.time() at the batch's start
    conversations: tuple[Conversation, ...]


def timeline_of(batch: object) -> Timeline:
    """Read a ``Batch`` or a ``RunResult``; anything else is a ``TypeError`` that says what to pass."""
    if isinstance(batch, RunResult):
        spans = tuple(span.shifted(batch.started_at) for span in batch.spans)
        only = Conversation(0, 0.0, batch.duration, batch.turns, spans, batch.usage)
        return Timeline("run", batch.agent_name, wall_clock_of(batch.started_at), (only,))
    if isinstance(batch, Batch):
        report = batch.report
        conversations = tuple(conversation_of(timing, batch) for timing in report.conversations)
        started = report.started_at_wall
        if started is None:  # a report from before the records kept it: estimate it from a result's clock
            started = estimated_wall_start(batch, conversations)
        return Timeline(report.runner, report.agent_name, started, conversations)
    raise TypeError(
        f"a trace is made from a Batch (what run_settled, run_concurrent, … return) or a RunResult, got "
        f"{type(batch).__name__}: pass the runner's result itself, whose .report holds the batch's clock"
    )


def conversation_of(timing: ConversationTiming, batch: Batch[Any]) -> Conversation:
    """One conversation of a batch: its timing from the report, its usage and error from the result list."""
    item = batch[timing.index] if 0 <= timing.index < len(batch) else None
    result = item.value if isinstance(item, Fulfilled) else item if isinstance(item, RunResult) else None
    reason = item.reason if isinstance(item, Rejected) else None
    error_type = type(reason).__name__ if reason else (timing.error or "").partition(":")[0] or None
    usage = result.usage if isinstance(result, RunResult) else None
    return Conversation(
        timing.index, timing.start, timing.end, timing.turns, timing.spans, usage, error_type, timing.error
    )


def wall_clock_of(perf_time: float) -> float:
    """``time.time()`` at the moment ``time.perf_counter()`` read ``perf_time``: the clocks' offset now."""
    return time.time() - (time.perf_counter() - perf_time)


def estimated_wall_start(batch: Batch[Any], conversations: tuple[Conversation, ...]) -> float:
    for item, conversation in zip(batch, conversations, strict=False):
        result = item.value if isinstance(item, Fulfilled) else item
        if isinstance(result, RunResult):
            return wall_clock_of(result.started_at - conversation.start)
    return time.time() - batch.report.wall_time  # every conversation failed: the batch ended about now


# -- The Chrome / Perfetto trace -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slice:
    """One bar on a track: whole microseconds, so that nesting is exact."""

    name: str
    cat: str  # "conversation", "model", "tool" or "wait"
    start: int
    end: int
    args: dict[str, Any]


def to_chrome_trace(batch: object) -> dict[str, Any]:
    """The batch in the Trace Event Format: what Perfetto and chrome://tracing open.

    Each conversation has a track named ``conv {index}``: a bar for the whole conversation, and inside it the
    model calls (named after the model, with their tokens) and the tool calls (named after the tool, with their
    call id). Tool calls that ran at the same time go to tracks just below it (``conv 3 · 2``), because a trace
    viewer draws a track as a stack: a bar may sit inside another, never across its end. A failed conversation's
    bar carries its error, and an instant event marks where it failed.
    """
    timeline = timeline_of(batch)
    title = f"{timeline.runner}: {timeline.agent_name}" if timeline.agent_name else timeline.runner
    events: list[dict[str, Any]] = [metadata("process_name", 0, {"name": title})]
    tid = 1  # the tracks' ids start at 2: a viewer calls the track whose id is the process's (1) its main thread
    for conversation in timeline.conversations:
        for lane, slices in enumerate(place_on_lanes(slices_of(conversation, timeline.agent_name))):
            tid += 1
            name = f"conv {conversation.index}" if lane == 0 else f"conv {conversation.index} · {lane + 1}"
            events += [
                metadata("thread_name", tid, {"name": name}),
                metadata("thread_sort_index", tid, {"sort_index": tid}),
            ]
            events += [complete_event(s, tid) for s in slices]
            if lane == 0 and conversation.error:
                events.append(error_marker(conversation, tid))
    other = {"runner": timeline.runner, "agent": timeline.agent_name, "started_at_wall": timeline.started_at_wall}
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_chrome_trace(batch: object, path: str | Path) -> Path:
    """Write ``to_chrome_trace(batch)`` as JSON to ``path`` (``.json``), and return the path."""
    text = json.dumps(to_chrome_trace(batch), ensure_ascii=False)  # bad input fails before a file is made
    Path(path).write_text(text)
    return Path(path)


def slices_of(conversation: Conversation, agent_name: str) -> list[Slice]:
    """The conversation's own bar, then one per span."""
    args: dict[str, Any] = {"index": conversation.index, "turns": conversation.turns}
    args["status"] = "rejected" if conversation.error else "fulfilled"
    if conversation.error:
        args["error"] = conversation.error
    if conversation.usage is not None:
        args |= {"input_tokens": conversation.usage.input_tokens, "output_tokens": conversation.usage.output_tokens}
    start, end = microseconds(conversation.start), microseconds(conversation.end)
    whole = Slice(agent_name or "conversation", "conversation", start, end, args)
    return [whole, *(slice_of(span) for span in conversation.spans)]


def slice_of(span: Span) -> Slice:
    known = {"call_id": span.call_id, "input_tokens": span.input_tokens, "output_tokens": span.output_tokens}
    args = {key: value for key, value in known.items() if value is not None}
    name = f"{span.name} wait" if span.kind == "wait" else span.name
    return Slice(name, span.kind, microseconds(span.start), microseconds(span.end), args)


def place_on_lanes(slices: list[Slice]) -> list[list[Slice]]:
    """Put each slice on the first lane where it nests properly: after the bars that ended, inside the one still
    open there, and never inside a bar of its own kind (two tools that ran together are not parent and child)."""
    lanes: list[list[Slice]] = []
    open_bars: list[list[Slice]] = []  # per lane, the bars still open at this slice's start, outermost first
    for piece in sorted(slices, key=lambda s: (s.start, -s.end)):  # a parent before the children it holds
        for lane, stack in zip(lanes, open_bars, strict=True):
            while stack and stack[-1].end <= piece.start:
                stack.pop()  # slices come in order of their start: a bar that ended stays ended
            if not stack or (piece.end <= stack[-1].end and piece.cat != stack[-1].cat):
                lane.append(piece)
                stack.append(piece)
                break
        else:
            lanes.append([piece])
            open_bars.append([piece])
    return lanes


def complete_event(piece: Slice, tid: int) -> dict[str, Any]:
    event = {"name": piece.name, "cat": piece.cat, "ph": "X", "ts": piece.start, "dur": piece.end - piece.start}
    return event | {"pid": 1, "tid": tid, "args": piece.args}


def error_marker(conversation: Conversation, tid: int) -> dict[str, Any]:
    """An instant event (``"ph": "i"``) on the conversation's track where it failed, named after its error."""
    name = f"✗ {conversation.error_type}"
    at = microseconds(conversation.end)
    return {"name": name, "ph": "i", "s": "t", "ts": at, "pid": 1, "tid": tid, "args": {"error": conversation.error}}


def metadata(name: str, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": 1, "tid": tid, "args": args}


def microseconds(seconds: float) -> int:
    return round(seconds * 1_000_000)


# -- OpenTelemetry GenAI spans --------------------------------------------------------------------------------


def export_opentelemetry(batch: object, tracer_provider: TracerProvider | None = None) -> int:
    """Send the batch as OpenTelemetry spans to ``tracer_provider`` (else the global one); return how many.

    Per conversation, an ``invoke_agent {agent name}`` span (kind INTERNAL: the agent runs in this process)
    whose children are ``chat {model}`` (kind CLIENT) per model call and ``execute_tool {tool}`` (INTERNAL)
    per tool call, with the attributes of the GenAI semantic conventions. Budget waits and retries become
    ``wait budget`` / ``wait retry`` spans. Each span's times are the recorded ones; a conversation that failed
    ends with status ERROR and ``error.type``, its exception's class name.
    """
    timeline = timeline_of(batch)  # bad input is a TypeError even without OpenTelemetry installed
    try:
        from opentelemetry import trace
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "export_opentelemetry needs OpenTelemetry: pip install 'agentlab[otel]' (opentelemetry-api and -sdk)"
        ) from exc
    tracer = trace.get_tracer("agentlab", tracer_provider=tracer_provider)
    zero = round(timeline.started_at_wall * 1e9)

    def nanoseconds(seconds: float) -> int:
        return zero + round(seconds * 1e9)

    return sum(export_conversation(tracer, c, timeline.agent_name, nanoseconds) for c in timeline.conversations)


def export_conversation(tracer: Tracer, conversation: Conversation, agent_name: str, ns: Callable[[float], int]) -> int:
    """One ``invoke_agent`` span and its children; return how many spans were sent."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    usage = conversation.usage
    models = [span.name for span in conversation.spans if span.kind == "model"]
    attributes = without_none(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.agent.name": agent_name or None,
            "gen_ai.request.model": models[0] if models else None,
            "gen_ai.usage.input_tokens": usage.input_tokens if usage else None,
            "gen_ai.usage.output_tokens": usage.output_tokens if usage else None,
            "agentlab.conversation.index": conversation.index,
        }
    )
    name = f"invoke_agent {agent_name}" if agent_name else "invoke_agent"
    root = tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes, start_time=ns(conversation.start))
    context = trace.set_span_in_context(root)
    for span in conversation.spans:
        name, kind, attributes = otel_shape(span)
        child = tracer.start_span(name, context, kind, attributes, start_time=ns(span.start))
        child.end(end_time=ns(span.end))
    if conversation.error_type:
        root.set_attribute("error.type", conversation.error_type)
        root.set_status(Status(StatusCode.ERROR, conversation.error))
    root.end(end_time=ns(conversation.end))
    return 1 + len(conversation.spans)


def otel_shape(span: Span) -> tuple[str, SpanKind, dict[str, Any]]:
    """A recorded span's name, span kind and attributes under the GenAI semantic conventions."""
    from opentelemetry.trace import SpanKind

    if span.kind == "model":
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": span.name,
            "gen_ai.usage.input_tokens": span.input_tokens,
            "gen_ai.usage.output_tokens": span.output_tokens,
        }
        return f"chat {span.name}", SpanKind.CLIENT, without_none(attributes)
    if span.kind == "tool":
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": span.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": span.call_id,
        }
        return f"execute_tool {span.name}", SpanKind.INTERNAL, without_none(attributes)
    return f"wait {span.name}", SpanKind.INTERNAL, {"agentlab.wait.reason": span.name}


def without_none(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes no None: an attribute that is not known is left out."""
    return {key: value for key, value in attributes.items() if value is not None}
