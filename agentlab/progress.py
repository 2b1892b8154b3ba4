"""Live progress for a batch: a tqdm bar (``progress=True``) or a ``ConversationBoard`` table of conversations.

Runners drive any object with the ``Progress`` methods. The protocol lives in ``agentlab.records``, so that
runners never import this module: they find ``TqdmProgress`` there by name when ``progress=True`` asks. Both
kinds stay quiet where there is no display: in a plain script the tqdm bar is text on stderr, and the board
keeps its state without drawing anything.
"""

from __future__ import annotations

import html
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentlab.records import AgentEvent, Outcome, Progress, Rejected, make_progress

__all__ = ["Progress", "TqdmProgress", "ConversationBoard", "BoardRow", "make_progress"]


class TqdmProgress:
    """A ``tqdm.auto`` bar: the widget bar in Jupyter, a text bar in a terminal."""

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

    def conversation_started(self, index: int) -> None:
        return None

    def conversation_event(self, index: int, event: AgentEvent) -> None:
        return None

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
class BoardRow:
    index: int
    prompt: str = ""
    status: str = "queued"  # queued → running → done / failed
    turns: int = 0
    started: float | None = None
    seconds: float = 0.0
    last_event: str = ""
    error: str | None = None


STATUS_LABEL = {"queued": "queued", "running": "running…", "done": "done ✓", "failed": "failed ✗"}
STATUS_COLOR = {"queued": "#888", "running": "#0072B2", "done": "#009E73", "failed": "#D55E00"}


class ConversationBoard:
    """A live table of a batch's conversations (ipywidgets), updated at most every ``refresh`` seconds."""

    def __init__(self, prompts: Sequence[str] | None = None, *, refresh: float = 0.1) -> None:
        self.prompts = list(prompts or [])
        self.refresh = refresh
        self.rows: list[BoardRow] = []
        self.label = ""
        self.renders = 0
        self._last_render = 0.0
        self._widget: Any = None

    # -- the Progress protocol --
    def start_batch(self, total: int, label: str) -> None:
        self.label = label
        self.rows = [BoardRow(i, self.prompts[i] if i < len(self.prompts) else "") for i in range(total)]
        self._widget = self._display()
        self.render(force=True)

    def conversation_started(self, index: int) -> None:
        row = self.rows[index]
        row.status, row.started = "running", time.perf_counter()
        self.render()

    def conversation_event(self, index: int, event: AgentEvent) -> None:
        row = self.rows[index]
        if event.kind == "model_end":
            row.turns += 1
        if event.kind == "tool_start":
            row.last_event = f"→ {event.name}({event.detail})"
        elif event.kind == "tool_end":
            row.last_event = f"← {event.detail}"
        if row.started is not None:
            row.seconds = event.time - row.started
        self.render()

    def conversation_finished(self, index: int, outcome: Outcome) -> None:
        row = self.rows[index]
        if row.started is not None:
            row.seconds = time.perf_counter() - row.started
        if isinstance(outcome, Rejected):
            row.status, row.error = "failed", type(outcome.reason).__name__
        else:
            row.status, row.turns = "done", outcome.value.turns
        self.render()

    def end_batch(self) -> None:
        self.render(force=True)

    # -- state and drawing --
    def counts(self) -> dict[str, int]:
        return dict(Counter(row.status for row in self.rows))

    def render(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_render < self.refresh:
            return
        self._last_render = now
        self.renders += 1
        if self._widget is not None:
            self._widget.value = self._repr_html_()

    def _repr_html_(self) -> str:
        counts = self.counts()
        head = " · ".join(f"{counts.get(s, 0)} {s}" for s in ("queued", "running", "done", "failed"))
        rows = "".join(
            f"<tr><td>{r.index}</td><td>{html.escape(r.prompt[:40])}</td>"
            f"<td style='color:{STATUS_COLOR[r.status]}'>{STATUS_LABEL[r.status]}"
            f"{' ' + html.escape(r.error) if r.error else ''}</td><td>{r.turns}</td><td>{r.seconds:.2f} s</td>"
            f"<td><code>{html.escape(r.last_event[:60])}</code></td></tr>"
            for r in self.rows
        )
        return (
            f"<div class='agentlab-board'><b>{html.escape(self.label)}</b>: {head}"
            "<table><tr><th>conv</th><th>prompt</th><th>status</th><th>turns</th><th>time</th><th>last event</th></tr>"
            f"{rows}</table></div>"
        )

    def _display(self) -> Any:
        """Show an HTML widget when running in a Jupyter kernel; otherwise draw nothing."""
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is None or not hasattr(shell, "kernel"):
                return self._widget
            if self._widget is None:
                import ipywidgets
                from IPython.display import display

                widget = ipywidgets.HTML()
                widget.add_class("agentlab-board")
                display(widget)  # type: ignore[no-untyped-call]
                return widget
        except Exception:  # no front end: keep the state, draw nothing
            return None
        return self._widget
