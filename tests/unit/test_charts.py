"""Charts: rendered with Agg, checked for content, and their numbers read back from the Axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors
import matplotlib.image
import matplotlib.pyplot as plt
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from agentlab.charts import TOOL_COLOR, WAIT_COLOR, bars, save_png, scaling, sum_vs_longest, timeline
from agentlab.records import BatchReport, ConversationTiming, Span


def conv(index: int, start: float, end: float, status: str = "fulfilled") -> ConversationTiming:
    middle = (start + end) / 2
    spans = (
        Span("model", "m", start, middle - 0.01),
        Span("tool", "sum_numbers", middle - 0.01, middle),
        Span("model", "m", middle, end),
    )
    return ConversationTiming(index, start, end, status, turns=2, spans=spans, error=None)  # type: ignore[arg-type]


SERIAL = BatchReport("run_serial", 9.0, (conv(0, 0.0, 5.0), conv(1, 5.0, 9.0)))
CONCURRENT = BatchReport("run_concurrent", 5.05, (conv(0, 0.0, 5.0), conv(1, 0.01, 4.0, "rejected")))


def test_sum_vs_longest_bars_hold_the_reports_numbers() -> None:
    fig = sum_vs_longest(SERIAL, CONCURRENT)
    ax = fig.axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([SERIAL.sum_of_durations, CONCURRENT.longest_duration, CONCURRENT.wall_time])
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "serial: sum of durations",
        "longest conversation",
        "concurrent: wall time",
    ]
    labels = [t.get_text() for t in ax.texts if isinstance(t, Text)]
    assert {"9.00 s", "5.00 s", "5.05 s"} <= set(labels)
    assert any("measured serial wall 9.00 s" in t for t in labels)


def test_timeline_has_one_row_per_conversation_and_the_wall_line(tmp_path: pytest.TempPathFactory) -> None:
    fig = timeline(CONCURRENT)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conv 0", "conv 1"]
    spans = sum(len(c.spans) for c in CONCURRENT.conversations)
    assert len(ax.patches) == CONCURRENT.n + spans
    wall_lines = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert wall_lines and wall_lines[0].get_xdata()[0] == pytest.approx(5.05)
    path = save_png(fig, tmp_path / "timeline.png")  # type: ignore[operator]
    assert path.stat().st_size > 5_000
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[1] > 600 and pixels.std() > 0.05, "the PNG is not blank"


def test_scaling_plots_each_runner_against_n() -> None:
    reports = [
        BatchReport("run_concurrent", 1.0 + n / 100, tuple(conv(i, 0, 1.0) for i in range(n))) for n in (1, 5, 10)
    ]
    reports += [BatchReport("run_serial", float(n), tuple(conv(i, i, i + 1.0) for i in range(n))) for n in (1, 2)]
    ax = scaling(reports).axes[0]
    measured = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines}
    assert measured["run_concurrent (measured wall)"] == ([1, 5, 10], pytest.approx([1.01, 1.05, 1.1]))
    assert measured["run_serial (measured wall)"] == ([1, 2], [1.0, 2.0])
    assert measured["run_serial ideal (sum of durations)"][1] == [1.0, 2.0]
    assert measured["run_concurrent ideal (longest conversation)"][1] == [1.0, 1.0, 1.0]


def test_empty_reports_do_not_fail_and_pyplot_stays_clean(tmp_path: pytest.TempPathFactory) -> None:
    empty = BatchReport("run_concurrent", 0.0)
    for fig in (timeline(empty), sum_vs_longest(empty, empty), scaling([]), bars(["a"], [0.0], title="t")):
        save_png(fig, tmp_path / "empty.png")  # type: ignore[operator]
    assert plt.get_fignums() == []


def test_charts_show_themselves_as_png_without_pyplot() -> None:
    png = timeline(SERIAL)._repr_png_()  # type: ignore[attr-defined]
    assert png.startswith(b"\x89PNG\r\n") and len(png) > 5_000


def overlaps(a: object, b: object) -> bool:
    return bool(a.overlaps(b))  # type: ignore[attr-defined]


def test_no_legend_covers_data() -> None:
    reports = [BatchReport("run_concurrent", 1.0 + n / 100, tuple(conv(i, 0, 1.0) for i in range(n))) for n in (1, 5)]
    reports += [BatchReport("run_serial", float(n), tuple(conv(i, i, i + 1.0) for i in range(n))) for n in (1, 9)]
    for fig in (timeline(SERIAL), timeline(CONCURRENT), scaling(reports)):
        FigureCanvasAgg(fig).draw()
        ax = fig.axes[0]
        legend = ax.get_legend()
        assert legend is not None
        box = legend.get_window_extent()
        assert not any(overlaps(box, patch.get_window_extent()) for patch in ax.patches), "a legend covers a bar"
        points = [ax.transData.transform(xy) for line in ax.lines for xy in line.get_xydata()]  # type: ignore[union-attr]
        assert not any(box.contains(x, y) for x, y in points), "a legend covers a point of a line"


def test_spans_at_the_same_time_in_one_conversation_are_drawn_on_sub_rows() -> None:
    parallel = (
        Span("model", "m", 0.0, 1.0),
        Span("tool", "sum_slowly", 1.0, 1.5),
        Span("tool", "sum_slowly", 1.0, 1.5),  # the two calls of one turn, together
        Span("model", "m", 1.5, 2.0),
    )
    report = BatchReport("run_serial", 2.0, (ConversationTiming(0, 0.0, 2.0, "fulfilled", 2, parallel),))
    ax = timeline(report).axes[0]
    tools = [p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb(TOOL_COLOR)]
    assert len(tools) == 2
    (a_low, a_high), (b_low, b_high) = sorted((p.get_y(), p.get_y() + p.get_height()) for p in tools)
    assert a_high <= b_low, "the two parallel tool calls share a sub-row"
    assert all(-0.35 <= y <= 0.35 for y in (a_low, a_high, b_low, b_high)), "the sub-rows stay inside the row"


def test_a_wait_for_the_budget_is_drawn_as_waiting_not_as_a_tool_call() -> None:
    spans = (
        Span("wait", "budget", 0.0, 1.0),  # the budget held the first call back for a second
        Span("model", "m", 1.0, 1.5),
        Span("tool", "sum_numbers", 1.5, 1.5001),  # a tool so short that it is drawn wider than it ran
        Span("wait", "budget", 1.5001, 2.5),
        Span("model", "m", 2.5, 3.0),
    )
    report = BatchReport("run_bounded", 3.0, (ConversationTiming(0, 0.0, 3.0, "fulfilled", 2, spans),))
    ax = timeline(report).axes[0]
    waits = [p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb(WAIT_COLOR)]
    tools = [p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb(TOOL_COLOR)]
    assert len(waits) == 2 and len(tools) == 1, "each wait is a grey bar, and only the tool call is orange"
    assert {round(p.get_y() + p.get_height() / 2, 6) for p in waits} == {0.0}, "a wait stays on its row's centre"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "waiting (budget, retry)" in legend
    plain = BatchReport("run_bounded", 1.0, (ConversationTiming(0, 0.0, 1.0, "fulfilled", 1, spans[1:2]),))
    assert "waiting (budget, retry)" not in [t.get_text() for t in timeline(plain).axes[0].get_legend().get_texts()]
