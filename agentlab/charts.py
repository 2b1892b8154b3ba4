"""Charts that make *sum of durations* against *longest duration* plain to see.

Each function takes reports and returns a matplotlib ``Figure`` (a notebook shows it as the cell's value).
None of them calls ``plt.show()`` or touches pyplot's global state: figures are built directly, as ``Chart``,
a ``Figure`` that knows how to show itself as a PNG in Jupyter even when pyplot was never imported.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from agentlab.records import BatchReport, ConversationTiming, Span

__all__ = ["Chart", "timeline", "sum_vs_longest", "scaling", "bars", "save_png"]

# A colour-blind-friendly palette (Okabe–Ito).
MODEL_COLOR = "#0072B2"
TOOL_COLOR = "#E69F00"
WAIT_COLOR = "#BBBBBB"  # waiting for a rate-limit budget, or before a retry
CONVERSATION_COLOR = "#D9E6F2"
FAILED_COLOR = "#D55E00"
SERIAL_COLOR = "#CC79A7"
CONCURRENT_COLOR = "#009E73"
IDEAL_COLOR = "#555555"


class Chart(Figure):
    """A Figure that displays itself as a PNG in a notebook (IPython calls ``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        FigureCanvasAgg(self)
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def timeline(report: BatchReport, *, title: str | None = None) -> Figure:
    """A Gantt chart: one row per conversation, model and tool spans in two colours, a line at the wall time.

    Spans of one conversation that ran at the same time (parallel tool calls) are drawn on sub-rows of its row,
    so that the overlap shows. The legend sits outside the axes, where it covers no bar.
    """
    rows = max(report.n, 1)
    fig = Chart(figsize=(9, min(2 + 0.35 * rows, 14)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title or f"{report.runner}: {report.n} conversations")
    if report.n == 0:
        return empty(ax)
    height = 0.7
    right = max(report.wall_time, max(c.end for c in report.conversations)) * 1.05
    thinnest = right * 0.004  # tool calls often take microseconds: draw them at least this wide to see them
    for row, conv in enumerate(report.conversations):
        draw_conversation(ax, row, conv, height)
        draw_spans(ax, row, conv.spans, height, thinnest)
    ax.axvline(report.wall_time, color=IDEAL_COLOR, linestyle="--", linewidth=1.2)
    ax.text(report.wall_time, -0.6, f"wall {report.wall_time:.2f} s ", va="bottom", ha="right", fontsize=9)
    ax.set_yticks(range(report.n), [f"conv {c.index}" for c in report.conversations], fontsize=9 if rows <= 20 else 6)
    ax.set_ylim(report.n - 0.4, -0.8)  # conv 0 at the top
    ax.set_xlabel("seconds since batch start")
    ax.set_xlim(0, right)
    add_timeline_legend(ax, waited=any(s.kind == "wait" for c in report.conversations for s in c.spans))
    return fig


def draw_conversation(ax: Axes, row: int, conv: ConversationTiming, height: float) -> None:
    """The conversation's own bar, from its start to its end; hatched and faint if it failed."""
    failed = conv.status == "rejected"
    ax.barh(
        row,
        conv.duration,
        left=conv.start,
        height=height,
        color=FAILED_COLOR if failed else CONVERSATION_COLOR,
        alpha=0.35 if failed else 1.0,
        hatch="//" if failed else None,
        edgecolor=FAILED_COLOR if failed else "none",
    )


def add_timeline_legend(ax: Axes, *, waited: bool) -> None:
    """The legend, outside the axes on the right, where it covers no bar; "waiting" only when a span waited."""
    handles = [
        Patch(color=MODEL_COLOR, label="model call"),
        Patch(color=TOOL_COLOR, label="tool call"),
        Patch(color=CONVERSATION_COLOR, label="conversation"),
        Patch(facecolor=FAILED_COLOR, alpha=0.35, hatch="//", label="failed"),
    ]
    if waited:
        handles.insert(2, Patch(color=WAIT_COLOR, label="waiting (budget, retry)"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        fontsize=8,
    )


def draw_spans(ax: Axes, row: int, spans: Sequence[Span], height: float, thinnest: float) -> None:
    """One conversation's spans; spans that overlap in time go on sub-rows of the row, one below the other."""
    lanes = sub_rows(spans, thinnest)
    count = max(lanes, default=0) + 1
    for span, lane in zip(spans, lanes, strict=True):
        model = span.kind == "model"
        band = (height * (0.6 if model else 0.9)) / count
        centre = row + (lane - (count - 1) / 2) * band
        if model:
            ax.barh(
                centre, span.duration, left=span.start, height=band, color=MODEL_COLOR, edgecolor="white", linewidth=0.8
            )
        elif span.kind == "wait":  # a budget's wait or a retry's: time the conversation spent not asking yet
            ax.barh(centre, span.duration, left=span.start, height=band * 0.3, color=WAIT_COLOR)
        else:
            ax.barh(centre, max(span.duration, thinnest), left=span.start, height=band * 0.9, color=TOOL_COLOR)


def sub_rows(spans: Sequence[Span], thinnest: float) -> list[int]:
    """For each span, the first sub-row whose last span ended before it started (as drawn, at least ``thinnest``)."""
    ends: list[float] = []
    lanes = [0] * len(spans)
    for index in sorted(range(len(spans)), key=lambda i: spans[i].start):  # spans are kept in the order they ended
        span = spans[index]
        slack = thinnest if span.kind == "wait" else 0.0  # a thin wait bar may run under a tool bar's drawn width
        lane = next((i for i, last in enumerate(ends) if last <= span.start + slack), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = span.start + max(span.duration, thinnest)
        lanes[index] = lane
    return lanes


def sum_vs_longest(serial: BatchReport, concurrent: BatchReport, *, title: str | None = None) -> Figure:
    """The headline chart: serial sum of durations, longest conversation, and concurrent wall time."""
    fig = bars(
        ["serial: sum of durations", "longest conversation", "concurrent: wall time"],
        [serial.sum_of_durations, concurrent.longest_duration, concurrent.wall_time],
        title=title or "Serial takes the sum; concurrent takes the longest",
        colors=[SERIAL_COLOR, IDEAL_COLOR, CONCURRENT_COLOR],
    )
    ax = fig.axes[0]
    ax.hlines(serial.wall_time, -0.4, 0.4, colors="black", linestyles=":", linewidth=1.5)
    ax.annotate(
        f"measured serial wall {serial.wall_time:.2f} s",
        (0, serial.wall_time),
        xytext=(0, -14),
        textcoords="offset points",
        ha="center",
        fontsize=8,
    )
    return fig


def scaling(reports: Sequence[BatchReport], *, title: str | None = None) -> Figure:
    """Wall time against N, one line per runner, with dashed ideal lines (sum for serial, longest otherwise)."""
    fig = Chart(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title or "Wall time as the batch grows")
    if not reports:
        return empty(ax)
    for runner in dict.fromkeys(r.runner for r in reports):
        points = sorted((r for r in reports if r.runner == runner), key=lambda r: r.n)
        serial = runner == "run_serial"
        color = SERIAL_COLOR if serial else CONCURRENT_COLOR
        ns = [r.n for r in points]
        ax.plot(ns, [r.wall_time for r in points], marker="o", color=color, label=f"{runner} (measured wall)")
        ideal = [r.sum_of_durations if serial else r.longest_duration for r in points]
        ax.plot(
            ns,
            ideal,
            linestyle="--",
            color=color,
            alpha=0.6,
            label=f"{runner} ideal ({'sum of durations' if serial else 'longest conversation'})",
        )
    ax.set_xlabel("conversations in the batch (N)")
    ax.set_ylabel("wall time (s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # outside: covers no line
    return fig


def bars(
    labels: Sequence[str],
    seconds: Sequence[float],
    *,
    title: str,
    ylabel: str = "seconds",
    colors: Sequence[str] | None = None,
) -> Figure:
    """A labelled bar chart, each bar marked with its value in seconds."""
    fig = Chart(figsize=(max(6, 1.6 * len(labels)), 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    container = ax.bar(list(labels), list(seconds), color=list(colors) if colors else CONCURRENT_COLOR)
    ax.bar_label(container, labels=[f"{s:.2f} s" for s in seconds], padding=3)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max([*seconds, 0.001]) * 1.18)
    ax.tick_params(axis="x", labelsize=9)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write the figure as a PNG (with the Agg canvas, so no display is needed) and return its path."""
    out = Path(path)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=110)
    return out


def empty(ax: Axes) -> Figure:
    ax.text(0.5, 0.5, "no conversations", ha="center", va="center", transform=ax.transAxes, color=IDEAL_COLOR)
    ax.set_xticks([])
    ax.set_yticks([])
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    return figure
