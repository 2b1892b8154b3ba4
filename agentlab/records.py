"""The records of runs and batches, and the contracts between a batch and whoever watches it.

- What a run and a batch give back: plain, frozen records that charts, tables and traces only read. Times are
  ``time.perf_counter()`` seconds. A ``RunResult`` holds absolute times; a ``BatchReport`` holds times relative
  to the start of its batch, so that a chart can start at 0.
- The event handler and the ``Progress`` protocol: what a runner tells whoever watches its batch. The views
  that draw it (the bar, the table, the lanes) read only these records; they live in ``agentlab.views``, and a
  runner loads them only when a batch asks for one (``progress=True``, ``"lanes"``, …).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

T = TypeVar("T")

SpanKind: TypeAlias = Literal["model", "tool", "wait"]
EventKind: TypeAlias = Literal["model_start", "model_end", "tool_start", "tool_end", "text_delta"]


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """Something that just happened inside a conversation, for logs and live progress.

    - ``model_start``: ``name`` is the model, ``detail`` is ``"turn 1"``, …
    - ``model_end``: ``detail`` says what came back (``"2 tool calls"`` or ``"answer"``).
    - ``tool_start``: ``name`` is the tool, ``detail`` its arguments (``"a=3, b=4"``).
    - ``tool_end``: ``name`` is the tool, ``detail`` what it returned (``"7"`` or ``"error: …"``).
    - ``text_delta``: (``Agent(stream=True)`` only) ``name`` is the model, ``detail`` the next piece of its text.
    """

    kind: EventKind
    name: str
    detail: str
    time: float


@dataclass(frozen=True, slots=True)
class Span:
    """One model call, one tool call or one wait: what ran, and when it started and ended.

    - ``kind="model"``: ``name`` is the model; ``input_tokens``/``output_tokens`` are the answer's usage.
    - ``kind="tool"``: ``name`` is the tool; ``call_id`` is the model's id of the call.
    - ``kind="wait"``: ``name`` is ``"budget"`` (waiting for the rate limit) or ``"retry"`` (before a retry).
    """

    kind: SpanKind
    name: str
    start: float
    end: float
    call_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def shifted(self, origin: float) -> Span:
        """The same span with times measured from ``origin``."""
        return dataclasses.replace(self, start=self.start - origin, end=self.end - origin)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens that the model reported, added up over the turns of a conversation."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True, slots=True)
class RunResult:
    """The result of one conversation: the answer, the whole transcript, and its timing."""

    output_text: str
    messages: list[dict[str, Any]] = field(repr=False)
    spans: tuple[Span, ...] = field(repr=False)
    usage: Usage
    turns: int
    started_at: float = field(repr=False)
    ended_at: float = field(repr=False)
    agent_name: str = ""

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


def format_transcript(messages: list[dict[str, Any]]) -> str:
    """A transcript as short readable lines: who said what, which tool was called, what it returned."""
    lines = []
    for item in messages:
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            text = (
                content
                if isinstance(content, str)
                else " ".join(str(part.get("text", "")) for part in content or [] if isinstance(part, dict))
            )
            lines.append(f"{item.get('role', '?'):<9} {text}")
        elif kind == "function_call":
            lines.append(f"{'call':<9} {item.get('name')}({item.get('arguments')})  [{item.get('call_id')}]")
        elif kind == "function_call_output":
            lines.append(f"{'output':<9} {item.get('output')}  [{item.get('call_id')}]")
        else:
            lines.append(f"{kind:<9} …")
    return "\n".join(lines)


# -- Outcomes: Promise.allSettled in Python -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fulfilled(Generic[T]):
    """A conversation that finished: ``value`` holds its result (like ``{status: "fulfilled", value}``)."""

    value: T

    @property
    def status(self) -> Literal["fulfilled"]:
        return "fulfilled"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A conversation that failed: ``reason`` holds the exception (like ``{status: "rejected", reason}``)."""

    reason: BaseException

    @property
    def status(self) -> Literal["rejected"]:
        return "rejected"


Outcome: TypeAlias = Fulfilled[RunResult] | Rejected


# -- Batch reports ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationTiming:
    """One conversation of a batch, with times relative to the batch start."""

    index: int
    start: float
    end: float
    status: Literal["fulfilled", "rejected"]
    turns: int = 0
    spans: tuple[Span, ...] = ()
    error: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True, repr=False)
class BatchReport:
    """The timing of a batch: how long it took (wall) against how long its conversations took (sum, longest).

    - ``speedup = sum_of_durations / wall_time``: how many conversations' worth of time ran at once.
    - ``efficiency = longest_duration / wall_time``: 1.0 means the batch took only as long as its
      longest conversation, the best that running them concurrently can do.
    """

    runner: str
    wall_time: float
    conversations: tuple[ConversationTiming, ...] = ()
    agent_name: str = ""
    started_at_wall: float | None = None  # time.time() when the batch started, for traces and logs

    @property
    def n(self) -> int:
        return len(self.conversations)

    @property
    def sum_of_durations(self) -> float:
        return sum(c.duration for c in self.conversations)

    @property
    def longest_duration(self) -> float:
        return max((c.duration for c in self.conversations), default=0.0)

    @property
    def speedup(self) -> float:
        return self.sum_of_durations / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def efficiency(self) -> float:
        return self.longest_duration / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def failed(self) -> int:
        return sum(c.status == "rejected" for c in self.conversations)

    def summary_rows(self) -> list[tuple[str, str]]:
        """The headline figures as (label, text) pairs, shared by the text and the HTML table."""
        return [
            ("conversations", f"{self.n} ({self.failed} failed)"),
            ("wall time", f"{self.wall_time:.2f} s"),
            ("sum of durations", f"{self.sum_of_durations:.2f} s"),
            ("longest", f"{self.longest_duration:.2f} s"),
            ("speedup (sum / wall)", f"{self.speedup:.2f}x"),
            ("efficiency (longest / wall)", f"{self.efficiency:.0%}"),
        ]

    def __str__(self) -> str:
        lines = [f"BatchReport: {self.runner}"]
        lines += [f"  {label:<28} {text}" for label, text in self.summary_rows()]
        if self.conversations:
            lines.append(f"  {'conv':>4}  {'start':>8}  {'end':>8}  {'duration':>8}  {'turns':>5}  status")
            for c in self.conversations:
                status = "✓" if c.status == "fulfilled" else f"✗ {c.error or ''}"
                lines.append(
                    f"  {c.index:>4}  {c.start:>6.2f} s  {c.end:>6.2f} s  {c.duration:>6.2f} s  {c.turns:>5}  {status}"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in self.summary_rows()
        )
        rows = "".join(
            f"<tr><td>{c.index}</td><td>{c.start:.2f} s</td><td>{c.end:.2f} s</td><td>{c.duration:.2f} s</td>"
            f"<td>{c.turns}</td><td>{'✓' if c.status == 'fulfilled' else '✗ ' + html.escape(c.error or '')}</td></tr>"
            for c in self.conversations
        )
        return (
            f"<div><b>BatchReport: {html.escape(self.runner)}</b><table>{head}</table>"
            "<table><tr><th>conv</th><th>start</th><th>end</th><th>duration</th><th>turns</th>"
            f"<th>status</th></tr>{rows}</table></div>"
        )


class Batch(list[T]):
    """The results of a batch, in input order, as a plain list that also carries its ``report``."""

    report: BatchReport

    def __init__(self, items: list[T], report: BatchReport) -> None:
        super().__init__(items)
        self.report = report


# -- Watching a batch: the event handler and the Progress protocol ---------------------------------------------

# Called with (conversation index, event) for every event of every conversation of a batch.
BatchEventHandler: TypeAlias = Callable[[int, AgentEvent], None]


class Progress(Protocol):
    """What a runner tells a progress display, in this order.

    ``run_batched`` also calls ``round_update`` each time it looks at the batch of a round (its status, and how
    many of its requests are finished); the other runners never do.
    """

    def start_batch(self, total: int, label: str) -> None: ...
    def conversation_started(self, index: int) -> None: ...
    def conversation_event(self, index: int, event: AgentEvent) -> None: ...
    def round_update(self, round_number: int, batch_id: str, status: str, finished: int, total: int) -> None: ...
    def conversation_finished(self, index: int, outcome: Outcome) -> None: ...
    def end_batch(self) -> None: ...


# What a runner's `progress=` accepts: False/None (nothing), True (the bar), a view's name, or a Progress.
ProgressOption: TypeAlias = "bool | str | Progress | None"
