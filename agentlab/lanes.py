"""Lanes: many conversations side by side, one lane each, their text appearing as the model writes it.

Every agent library shows one streamed run at a time. Lanes show a whole batch at once, which makes lesson
02's point visible while it happens: the conversations are *interleaved*. While one lane waits for its model,
the others write.

    from agentlab import Agent, run_concurrent
    agent = Agent("math", "...", tools=MATH_TOOLS, stream=True)
    results = await run_concurrent(agent, prompts, progress="lanes")   # or progress=Lanes(prompts)

A ``Lanes`` object is a progress display (the runners' ``Progress`` methods). Each lane shows its text as the
``text_delta`` events arrive (an ``Agent(stream=True)``), its tool calls marked ``→ name(args)`` and
``← result``, and its final state: done with its answer, or failed with the error.

Where it draws:

- In Jupyter, a live ``ipywidgets.HTML`` view, redrawn at most every ``refresh`` seconds. When the batch ends,
  the widget's place is taken by the same picture as plain HTML, so a saved notebook keeps the final state
  (stored outputs hold no widget state).
- Elsewhere, text: one line as each conversation ends, then every lane in full (``str(lanes)``).
"""

from __future__ import annotations

import html
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from agentlab.records import AgentEvent, Outcome, Rejected

__all__ = ["Lanes", "Lane"]

Status = Literal["queued", "running", "done", "failed"]
COLORS = {"queued": "#888", "running": "#0072B2", "done": "#009E73", "failed": "#D55E00"}
SYMBOLS = {"queued": "…", "running": "▶", "done": "✓", "failed": "✗"}


@dataclass(slots=True)
class Lane:
    """One conversation's lane: its status and what it showed, in order (text, tool calls, results)."""

    index: int
    prompt: str = ""
    status: Status = "queued"
    turns: int = 0
    started: float | None = None
    seconds: float = 0.0
    pieces: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): "text", "call", "result"
    error: str | None = None

    def add_text(self, text: str) -> None:
        """Append streamed text to the lane's last text piece, or start one."""
        if self.pieces and self.pieces[-1][0] == "text":
            self.pieces[-1] = ("text", self.pieces[-1][1] + text)
        else:
            self.pieces.append(("text", text))

    @property
    def text(self) -> str:
        return "".join(text for kind, text in self.pieces if kind == "text")


class Lanes:
    """A live view of N conversations streaming side by side: pass it as a runner's ``progress``."""

    def __init__(
        self, prompts: Sequence[str] | None = None, *, refresh: float = 0.1, file: TextIO | None = None
    ) -> None:
        self.prompts = list(prompts or [])
        self.refresh = refresh
        self.file = file  # where the text fallback goes; None: sys.stdout at the time it prints
        self.lanes: list[Lane] = []
        self.label = ""
        self.renders = 0
        self._last_render = 0.0
        self._widget: Any = None
        self._handle: Any = None

    # -- the Progress protocol --------------------------------------------------------------------------

    def start_batch(self, total: int, label: str) -> None:
        self.label = label
        self.lanes = [Lane(i, self.prompts[i] if i < len(self.prompts) else "") for i in range(total)]
        self._widget, self._handle = show_widget()
        self.render(force=True)

    def conversation_started(self, index: int) -> None:
        lane = self.lanes[index]
        lane.status, lane.started = "running", time.perf_counter()
        self.render()

    def conversation_event(self, index: int, event: AgentEvent) -> None:
        lane = self.lanes[index]
        if event.kind == "text_delta":
            lane.add_text(event.detail)
        elif event.kind == "model_end":
            lane.turns += 1
        elif event.kind == "tool_start":
            lane.pieces.append(("call", f"→ {event.name}({event.detail})"))
        elif event.kind == "tool_end":
            lane.pieces.append(("result", f"← {event.detail}"))
        if lane.started is not None:
            lane.seconds = event.time - lane.started
        self.render()

    def conversation_finished(self, index: int, outcome: Outcome) -> None:
        lane = self.lanes[index]
        if lane.started is not None:
            lane.seconds = time.perf_counter() - lane.started
        if isinstance(outcome, Rejected):
            lane.status, lane.error = "failed", f"{type(outcome.reason).__name__}: {outcome.reason}"
        else:
            lane.status, lane.turns = "done", outcome.value.turns
            if not lane.text.strip():  # not streamed: show the answer once it is there
                lane.add_text(outcome.value.output_text)
        if self._widget is None:
            self.print_line(lane)
        self.render(force=True)

    def end_batch(self) -> None:
        self.render(force=True)
        if self._handle is not None:
            freeze(self._handle, self._repr_html_(), str(self))  # the saved notebook keeps the final picture
            self._widget.close()  # the live view is gone from the page: free its model in the kernel
            self._widget = self._handle = None
        elif self.lanes:
            print(self, file=self.file or sys.stdout)

    # -- drawing ------------------------------------------------------------------------------------------

    def render(self, force: bool = False) -> None:
        """Redraw the widget, at most every ``refresh`` seconds unless forced."""
        now = time.monotonic()
        if self._widget is None or (not force and now - self._last_render < self.refresh):
            return
        self._last_render = now
        self.renders += 1
        self._widget.value = self._repr_html_()

    def print_line(self, lane: Lane) -> None:
        """The text fallback's line for a conversation that just ended."""
        tail = lane.error or lane.text.strip().replace("\n", " ")
        print(
            f"[lane {lane.index}] {SYMBOLS[lane.status]} {lane.seconds:.2f} s: {tail[:100]}",
            file=self.file or sys.stdout,
        )

    def counts(self) -> dict[str, int]:
        return {status: sum(lane.status == status for lane in self.lanes) for status in COLORS}

    def __str__(self) -> str:
        head = " · ".join(f"{n} {status}" for status, n in self.counts().items())
        blocks = [f"Lanes: {self.label}: {head}"]
        for lane in self.lanes:
            blocks.append(
                f"── lane {lane.index} {SYMBOLS[lane.status]} {lane.status}, {lane.turns} turns, {lane.seconds:.2f} s"
            )
            for kind, text in lane.pieces:
                blocks.append(textwrap.indent(textwrap.fill(text, 96) if kind == "text" else text, "   "))
            if lane.error:
                blocks.append(f"   {lane.error}")
        return "\n".join(blocks)

    def __repr__(self) -> str:
        return f"Lanes({self.label!r}, {len(self.lanes)} lanes, {self.counts()})"

    def _repr_html_(self) -> str:
        head = " · ".join(f"{n} {status}" for status, n in self.counts().items())
        lanes = "".join(lane_html(lane) for lane in self.lanes)
        return (
            f"<div class='agentlab-lanes'><b>{html.escape(self.label)}</b>: {head}"
            f"<div style='display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start'>{lanes}</div></div>"
        )


def lane_html(lane: Lane) -> str:
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


def show_widget() -> tuple[Any, Any]:
    """An ``ipywidgets.HTML`` shown with a display handle when running in a Jupyter kernel, else ``(None, None)``."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return None, None
        import ipywidgets
        from IPython.display import display

        widget = ipywidgets.HTML()
        widget.add_class("agentlab-lanes")
        handle = display(widget, display_id=True)  # type: ignore[no-untyped-call]
        return widget, handle
    except Exception:  # no front end: the text fallback
        return None, None


def freeze(handle: Any, picture: str, text: str) -> None:
    """Put the final picture where the live widget was: HTML, and text for a reader that shows no HTML."""
    handle.update({"text/html": picture, "text/plain": text}, raw=True)
