"""Exercise 04b: the headline chart of a batch, checked by reading each bar of the returned Figure with its name.

A bar's name is what a reader of the chart sees at its place: its tick label, or the legend label of a
series of one bar. Names elsewhere (the title, an axis label) name no bar in particular.
"""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from agentlab.exercises import Feedback
from agentlab.exercises._helpers import describe, fail, unfilled
from agentlab.records import BatchReport

HINTS = [
    "Three bars: the sum of the durations, the longest duration, and the wall time, all from `report`.",
    "`agentlab.charts.bars(labels, seconds, title=...)` draws labelled bars and returns the Figure.",
    "`figure = bars(['sum of durations', 'longest', 'wall time'], [sum(durations), max(durations), "
    "report.wall_time], title='...')`, as the last line of the cell.",
]
NAMES = {"sum": "sum of durations", "longest": "longest conversation", "wall": "wall time"}
# Words a learner may use for each bar, looked for in this order: "total wall time" is the wall bar.
WORDS = {
    "wall": ("wall", "elapsed", "clock", "batch"),
    "longest": ("longest", "max", "slowest", "largest", "biggest"),
    "sum": ("sum", "total", "serial", "added", "combined"),
}


def check(report: Any = ..., figure: Any = ..., **_: Any) -> Feedback:
    """The Figure has one bar for each of sum, longest and wall, each named for what its height shows."""
    if figure is None:
        return fail(
            "`figure` is None: `plt.show()` shows the chart and gives back None. Keep the Figure itself: "
            "`figure = bars(...)`, or with pyplot `figure = plt.gcf()` before `plt.show()`."
        )
    if problem := unfilled(report=report, figure=figure):
        return fail(problem)
    if not isinstance(report, BatchReport) or not report.conversations:
        return fail("pass the batch's `report` to check(...) as well.")
    if not isinstance(figure, Figure):
        what = "the Axes: its Figure is `ax.figure`" if isinstance(figure, Axes) else describe(figure)
        return fail(f"`figure` should be the matplotlib Figure you drew (`bars(...)` returns it), not {what}.")
    wanted = {"sum": report.sum_of_durations, "longest": report.longest_duration, "wall": report.wall_time}
    drawn = named_bars(figure)
    if problem := heights_problem(drawn, wanted) or names_problem(drawn, wanted, figure):
        return fail(problem)
    return Feedback(
        True,
        (
            f"three named bars: sum {wanted['sum']:.2f} s, longest {wanted['longest']:.2f} s, wall "
            f"{wanted['wall']:.2f} s.",
            "The wall bar sits between the longest and the sum: some conversations waited before they started."
            if wanted["wall"] > 1.1 * wanted["longest"]
            else "The wall bar is about the longest, far below the sum: the conversations ran at the same time.",
        ),
    )


def named_bars(figure: Figure) -> list[tuple[str, float]]:
    """``(name, height)`` of every bar (``bar`` or ``barh``) of every axes: the tick label at the bar's middle,
    and the legend label of its series when the series is that one bar."""
    found: list[tuple[str, float]] = []
    for ax in figure.axes:
        for bars in (c for c in ax.containers if isinstance(c, BarContainer)):
            vertical = bars.orientation != "horizontal"
            ticks = tick_names(ax.xaxis if vertical else ax.yaxis)
            series = str(bars.get_label()) if len(bars.patches) == 1 else ""
            values: Any = bars.datavalues
            for patch, value in zip(bars.patches, values, strict=False):
                low, size = (patch.get_x(), patch.get_width()) if vertical else (patch.get_y(), patch.get_height())
                tick = next((name for at, name in ticks if abs(at - (low + size / 2)) <= abs(size) / 2), "")
                found.append((f"{tick} {'' if series.startswith('_') else series}".strip(), abs(float(value))))
    return found


def tick_names(axis: Axis) -> list[tuple[float, str]]:
    places, labels = axis.get_majorticklocs(), axis.get_majorticklabels()
    return [(float(at), label.get_text()) for at, label in zip(places, labels, strict=False)]


def kind_of(name: str) -> str | None:
    return next((kind for kind, words in WORDS.items() if any(w in name.lower() for w in words)), None)


def close(drawn: float, value: float) -> bool:
    return abs(drawn - value) <= max(0.01 * value, 0.006)  # 1%, or a figure rounded to 2 decimals


def heights_problem(drawn: list[tuple[str, float]], wanted: dict[str, float]) -> str | None:
    if not drawn:
        return "your figure has no bars: draw them with `bars(...)`, `ax.bar(...)` or `ax.barh(...)`."
    absent = [kind for kind, value in wanted.items() if not any(close(h, value) for _, h in drawn)]
    if not absent:
        return None
    if all(any(close(h, 1000 * value) for _, h in drawn) for value in wanted.values()):
        return (
            "your bars are 1000 times the report's figures: they are in milliseconds. The report's durations are "
            "seconds: draw them as they are."
        )
    missing = " or the ".join(f"{NAMES[k]} ({wanted[k]:.2f} s)" for k in absent)
    return f"no bar is as high as the {missing}: take each bar's height from `report`."


def names_problem(drawn: list[tuple[str, float]], wanted: dict[str, float], figure: Figure) -> str | None:
    """Each kind's bar must carry a name of that kind; the first bar that does not, said with what it shows."""
    if not any(kind_of(name) for name, _ in drawn):
        elsewhere = [text for ax in figure.axes for text in (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())]
        where = (
            ": the names are only in the title or an axis label, which name no bar"
            if any(map(kind_of, elsewhere))
            else ""
        )
        return f"the bars are right, but none is named{where}. Give each bar its name (the labels of `bars(...)`)."
    for kind, value in wanted.items():
        name, _ = next((n, h) for n, h in drawn if close(h, value))
        said = kind_of(name)
        if said != kind:
            what = f"is named '{name}', which says the {NAMES[said]}" if said else f"has no name ('{name}')"
            return (
                f"the bar of the {NAMES[kind]} ({value:.2f} s) {what}: give each bar the name of its own value "
                "(labels and heights in the same order)."
            )
    return None
