"""Exercise 04b: the headline chart of a batch, checked by reading the bars of the returned Figure."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fill_in, missing
from agentlab.records import BatchReport

HINTS = [
    "Three bars: the sum of the durations, the longest duration, and the wall time, all from `report`.",
    "`agentlab.charts.bars(labels, seconds, title=...)` draws labelled bars and returns the Figure.",
    "`figure = bars(['sum of durations', 'longest', 'wall time'], [sum(durations), max(durations), "
    "report.wall_time], title='...')`, as the last line of the cell.",
]
WORDS = {"sum": "sum of durations", "longest": "longest conversation", "wall": "wall time"}


def check(report: Any = ..., figure: Any = ..., **_: Any) -> Feedback:
    """The Figure has a bar for each of sum, longest and wall (their heights), each labelled."""
    if names := missing(report=report, figure=figure):
        return Feedback(False, (fill_in(names),))
    if not isinstance(report, BatchReport) or not report.conversations:
        return Feedback(False, ("pass the batch's `report` to check(...) as well.",))
    if not isinstance(figure, Figure):
        return Feedback(
            False,
            (
                f"`figure` should be the matplotlib Figure you drew (`bars(...)` returns it; `plt.show()` returns "
                f"None); it is {describe(figure)}.",
            ),
        )
    drawn = bar_lengths(figure)
    wanted = {"sum": report.sum_of_durations, "longest": report.longest_duration, "wall": report.wall_time}
    absent = [key for key, value in wanted.items() if not any(abs(d - value) <= 0.01 * value for d in drawn)]
    if not drawn:
        return Feedback(False, ("your figure has no bars: draw one bar per figure (`ax.bar` or `bars(...)`).",))
    if absent:
        shown = ", ".join(f"{d:.2f}" for d in drawn)
        return Feedback(
            False,
            (
                f"your bars are {shown} s; no bar shows the {' or the '.join(WORDS[k] for k in absent)} "
                f"({', '.join(f'{wanted[k]:.2f} s' for k in absent)}). Take each from `report`.",
            ),
        )
    text = " ".join(figure_text(figure)).lower()
    unlabelled = [WORDS[k] for k in wanted if k not in text]
    if unlabelled:
        return Feedback(False, (f"the bars are right, but no label says {', '.join(unlabelled)}: name each bar.",))
    return Feedback(
        True,
        (
            f"three labelled bars: sum {wanted['sum']:.2f} s, longest {wanted['longest']:.2f} s, wall "
            f"{wanted['wall']:.2f} s.",
            reading(wanted),
        ),
    )


def reading(wanted: dict[str, float]) -> str:
    if wanted["wall"] > 1.1 * wanted["longest"]:
        return "The wall bar sits between the longest and the sum: some conversations waited before they started."
    return "The wall bar is about the longest, far below the sum: the conversations ran at the same time."


def bar_lengths(figure: Figure) -> list[float]:
    """The length of every bar (height for ``bar``, width for ``barh``) on every axes of the figure."""
    lengths: list[float] = []
    for ax in figure.axes:
        for patch in ax.patches:
            if isinstance(patch, Rectangle):
                lengths += [abs(patch.get_height()), abs(patch.get_width())]
    return lengths


def figure_text(figure: Figure) -> list[str]:
    """Tick labels, the title, axis labels, legends and free text: where a bar's name can be written."""
    texts: list[str] = [t.get_text() for t in figure.texts]
    for ax in figure.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        texts += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend:
            texts += [t.get_text() for t in legend.get_texts()]
    return texts
