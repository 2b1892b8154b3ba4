"""The live views of a batch, behind the one ``Progress`` protocol of ``agentlab.records``.

- ``TqdmProgress`` (``progress=True`` or ``"bar"``): a ``tqdm.auto`` bar of finished conversations.
- ``ConversationBoard`` (``"table"``): a table, one row per conversation (queued → running → done ✓ / failed ✗).
- ``Lanes`` (``"lanes"``): one lane per conversation, its text appearing as the model writes it.

Every runner and ``run_batched`` drive them the same way; ``run_batched`` also reports each look at a round's
batch (``round_update``). The table and the lanes are one ``LiveView`` that keeps a ``Row`` per conversation and
differs only in how it draws them. In Jupyter it is a live ``ipywidgets.HTML``, redrawn at most every ``refresh``
seconds; when the batch ends, the widget's place is taken by the same picture as plain HTML, so a saved notebook
keeps the final state (stored outputs hold no widget state). Elsewhere it prints text: one line as each
conversation ends, then the whole view.

These views read only records, so the runners make them from ``progress=...`` with ``make_progress``.
"""

from __future__ import annotations

import html
import sys
import textwrap
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from agentlab.errors import ConfigurationError
from agentlab.records import AgentEvent, Outcome, Progress, ProgressOption, Rejected

__all__ = ["ConversationBoard", "Lanes", "LiveView", "Quiet", "Row", "TqdmProgress", "make_progress"]

Status = Literal["queued", "running", "done", "failed"]
COLORS = {"queued": "#888", "running": "#0072B2", "done": "#009E73", "failed": "#D55E00"}
SYMBOLS = {"queued": "…", "running": "▶", "done": "✓", "failed": "✗"}


def make_progress(progress: ProgressOption) -> Progress | None:
    """``False`` → no view, ``True`` → the bar, ``"bar"``/``"table"``/``"lanes"`` → that view, a Progress → itself."""
    if progress is False or progress is None:
        return None
    if not isinstance(progress, str | bool):
        return progress
    views = {"bar": TqdmProgress, "table": ConversationBoard, "lanes": Lanes}
    name = "bar" if progress is True else progress
    if name not in views:
        raise ConfigurationError(
            f"progress={progress!r} is not a known view: use True, False, one of {sorted(views)}, "
            "or an object with the Progress methods (start_batch, conversation_started, …)"
        )
    view: Progress = views[name]()
    return view


class Quiet:
    """A ``Progress`` that shows nothing: what a run nobody watches tells, and the base of the views below."""

    def start_batch(self, total: int, label: str) -> None:
        return None

    def conversation_started(self, index: int) -> None:
        return None

    def conversation_event(self, index: int, event: AgentEvent) -> None:
        return None

    def round_update(self, round_number: int, batch_id: str, status: str, finished: int, total: int) -> None:
        return None

    def conversation_finished(self, index: int, outcome: Outcome) -> None:
        return None

    def end_batch(self) -> None:
        return None


class TqdmProgress(Quiet):
    """A ``tqdm.auto`` bar of finished conversations: the widget bar in Jupyter, a text bar in a terminal."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.failed = 0

    def start_batch(self, total: int, label: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm warns when ipywidgets is missing; the text bar is fine
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=label, unit="conv")
            except Exception:  # no widget front end: fall back to the plain text bar
                from tqdm import tqdm as text_tqdm

                self.bar = text_tqdm(total=total, desc=label, unit="conv")

    def round_update(self, round_number: int, batch_id: str, status: str, finished: int, total: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"round {round_number}: {status}, {finished}/{total} requests", refresh=True)

    def conversation_finished(self, index: int, outcome: Outcome) -> None:
        if self.bar is None:
            return
        if isinstance(outcome, Rejected):
            self.failed += 1
            self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update(1)

    def end_batch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass(slots=True)
class Row:
    """One conversation as a view shows it: its status, and what it showed in order (text, tool calls, results)."""

    index: int
    prompt: str = ""
    status: Status = "queued"
    turns: int = 0
    started: float | None = None
    seconds: float = 0.0
    pieces: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): "text", "call", "result"
    error: str | None = None

    def add_text(self, text: str) -> None:
        """Append streamed text to the row's last text piece, or start one."""
        if self.pieces and self.pieces[-1][0] == "text":
            self.pieces[-1] = ("text", self.pieces[-1][1] + text)
        else:
            self.pieces.append(("text", text))

    @property
    def text(self) -> str:
        return "".join(text for kind, text in self.pieces if kind == "text")

    @property
    def last_event(self) -> str:
        """The last tool call or result, ``→ name(args)`` or ``← output``."""
        return next((text for kind, text in reversed(self.pieces) if kind != "text"), "")


class LiveView(Quiet):
    """A ``Progress`` that keeps one ``Row`` per conversation and draws them; subclasses say how they look."""

    css_class = "agentlab-view"
    row_name = "conv"  # in the text line of a conversation that ended

    def __init__(
        self, prompts: Sequence[str] | None = None, *, refresh: float = 0.1, file: TextIO | None = None
    ) -> None:
        self.prompts = list(prompts or [])
        self.refresh = refresh
        self.file = file  # where the text goes outside Jupyter; None: sys.stdout at the time it prints
        self.rows: list[Row] = []
        self.label = ""
        self.round = ""  # run_batched only: the round in flight and its batch's status
        self.renders = 0
        self._last_render = 0.0
        self._widget: Any = None
        self._handle: Any = None

    # -- the Progress protocol --------------------------------------------------------------------------

    def start_batch(self, total: int, label: str) -> None:
        self.label = label
        self.rows = [Row(i, self.prompts[i] if i < len(self.prompts) else "") for i in range(total)]
        self._widget, self._handle = show_widget(self.css_class)
        self.render(force=True)

    def conversation_started(self, index: int) -> None:
        row = self.rows[index]
        row.status, row.started = "running", time.perf_counter()
        self.render()

    def conversation_event(self, index: int, event: AgentEvent) -> None:
        row = self.rows[index]
        if event.kind == "text_delta":
            row.add_text(event.detail)
        elif event.kind == "model_end":
            row.turns += 1
        elif event.kind == "tool_start":
            row.pieces.append(("call", f"→ {event.name}({event.detail})"))
        elif event.kind == "tool_end":
            row.pieces.append(("result", f"← {event.detail}"))
        if row.started is not None:
            row.seconds = event.time - row.started
        self.render()

    def round_update(self, round_number: int, batch_id: str, status: str, finished: int, total: int) -> None:
        self.round = f"round {round_number} ({batch_id}): {status}, {finished}/{total} requests"
        self.render()

    def conversation_finished(self, index: int, outcome: Outcome) -> None:
        row = self.rows[index]
        if row.started is not None:
            row.seconds = time.perf_counter() - row.started
        if isinstance(outcome, Rejected):
            row.status, row.error = "failed", f"{type(outcome.reason).__name__}: {outcome.reason}"
        else:
            row.status, row.turns = "done", outcome.value.turns
            if not row.text.strip():  # not streamed: show the answer once it is there
                row.add_text(outcome.value.output_text)
        if self._widget is None:
            print(self.line(row), file=self.file or sys.stdout)
        self.render(force=True)

    def end_batch(self) -> None:
        self.render(force=True)
        if self._handle is not None:
            freeze(self._handle, self._repr_html_(), str(self))  # the saved notebook keeps the final picture
            self._widget.close()  # the live view is gone from the page: free its model in the kernel
            self._widget = self._handle = None
        elif self.rows:
            print(self, file=self.file or sys.stdout)

    # -- state and drawing --------------------------------------------------------------------------------

    def render(self, force: bool = False) -> None:
        """Redraw the widget, at most every ``refresh`` seconds unless forced."""
        now = time.monotonic()
        if self._widget is None or (not force and now - self._last_render < self.refresh):
            return
        self._last_render = now
        self.renders += 1
        self._widget.value = self._repr_html_()

    def counts(self) -> dict[str, int]:
        return {status: sum(row.status == status for row in self.rows) for status in COLORS}

    def head(self) -> str:
        counts = " · ".join(f"{n} {status}" for status, n in self.counts().items())
        return f"{counts} · {self.round}" if self.round else counts

    def line(self, row: Row) -> str:
        """The text line for a conversation that just ended."""
        tail = row.error or row.text.strip().replace("\n", " ")
        return f"[{self.row_name} {row.index}] {SYMBOLS[row.status]} {row.seconds:.2f} s: {tail[:100]}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r}, {len(self.rows)} conversations, {self.counts()})"

    def _repr_html_(self) -> str:
        raise NotImplementedError  # each view draws itself


class ConversationBoard(LiveView):
    """A live table of a batch's conversations: status, turns, time and the last tool call of each."""

    css_class = "agentlab-board"

    def __str__(self) -> str:
        lines = [f"{self.label}: {self.head()}", f"{'conv':>4}  {'status':<9} {'turns':>5} {'time':>8}  last event"]
        for r in self.rows:
            lines.append(f"{r.index:>4}  {r.status:<9} {r.turns:>5} {r.seconds:>6.2f} s  {r.last_event[:60]}")
            if r.error:
                lines.append(f"      {r.error}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{r.index}</td><td>{html.escape(r.prompt[:40])}</td>"
            f"<td style='color:{COLORS[r.status]}'>{r.status} {SYMBOLS[r.status]}"
            f"{' ' + html.escape(r.error) if r.error else ''}</td><td>{r.turns}</td><td>{r.seconds:.2f} s</td>"
            f"<td><code>{html.escape(r.last_event[:60])}</code></td></tr>"
            for r in self.rows
        )
        return (
            f"<div class='agentlab-board'><b>{html.escape(self.label)}</b>: {html.escape(self.head())}"
            "<table><tr><th>conv</th><th>prompt</th><th>status</th><th>turns</th><th>time</th><th>last event</th></tr>"
            f"{rows}</table></div>"
        )


class Lanes(LiveView):
    """N conversations side by side, one lane each, their text appearing as the model writes it.

    Lanes make lesson 02's point visible while it happens: the conversations are *interleaved*. While one lane
    waits for its model, the others write (``Agent(stream=True)`` sends the text as ``text_delta`` events).
    """

    css_class = "agentlab-lanes"
    row_name = "lane"

    def __str__(self) -> str:
        blocks = [f"Lanes: {self.label}: {self.head()}"]
        for lane in self.rows:
            blocks.append(
                f"── lane {lane.index} {SYMBOLS[lane.status]} {lane.status}, {lane.turns} turns, {lane.seconds:.2f} s"
            )
            for kind, text in lane.pieces:
                blocks.append(textwrap.indent(textwrap.fill(text, 96) if kind == "text" else text, "   "))
            if lane.error:
                blocks.append(f"   {lane.error}")
        return "\n".join(blocks)

    def _repr_html_(self) -> str:
        lanes = "".join(lane_html(lane) for lane in self.rows)
        return (
            f"<div class='agentlab-lanes'><b>{html.escape(self.label)}</b>: {html.escape(self.head())}"
            f"<div style='display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start'>{lanes}</div></div>"
        )


def lane_html(lane: Row) -> str:
    """One lane as a small column: a coloured header, then its text and marked tool calls."""
    color = COLORS[lane.status]
    styles = {"text": "", "call": "color:#0072B2", "result": "color:#555"}
    body = "".join(
        f"<span style='{styles[kind]}'>{html.escape(text)}</span>" if kind == "text" else
        f"<div style='{styles[kind]};font-family:monospace;font-size:90%'>{html.escape(text)}</div>"
        for kind, text in lane.pieces
    )  # fmt: skip
    error = f"<div style='color:{COLORS['failed']}'>{html.escape(lane.error)}</div>" if lane.error else ""
    prompt = f"<div style='color:#888;font-size:85%'>{html.escape(lane.prompt[:80])}</div>" if lane.prompt else ""
    return (
        f"<div class='agentlab-lane' style='flex:1 1 13em;min-width:11em;max-width:24em;border:1px solid {color};"
        "border-radius:4px;padding:4px 6px;font-size:90%'>"
        f"<div style='color:{color};font-weight:bold'>{SYMBOLS[lane.status]} conv {lane.index} · "
        f"{lane.status} · {lane.turns} turns · {lane.seconds:.2f} s</div>{prompt}"
        f"<div style='max-height:14em;overflow-y:auto;white-space:pre-wrap'>{body}{error}</div></div>"
    )


def show_widget(css_class: str) -> tuple[Any, Any]:
    """An ``ipywidgets.HTML`` shown with a display handle when running in a Jupyter kernel, else ``(None, None)``."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return None, None
        import ipywidgets
        from IPython.display import display

        widget = ipywidgets.HTML()
        widget.add_class(css_class)
        handle = display(widget, display_id=True)  # type: ignore[no-untyped-call]
        return widget, handle
    except Exception:  # no front end: the text fallback
        return None, None


def freeze(handle: Any, picture: str, text: str) -> None:
    """Put the final picture where the live widget was: HTML, and text for a reader that shows no HTML."""
    handle.update({"text/html": picture, "text/plain": text}, raw=True)
