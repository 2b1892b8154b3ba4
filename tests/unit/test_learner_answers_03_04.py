"""Exercises 03, 04 and 04b, answered by real learner code against the offline server (see the 01_02 file)."""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from agentlab import Agent, BackendError, as_completed, make_client, run_bounded, run_settled
from agentlab.charts import bars
from agentlab.exercises import check
from agentlab.records import BatchReport
from agentlab.tools.math import MATH_TOOLS

PROMPTS = [
    "What is 1 + 1?",
    "What is 2 * 3? [fault=500]",
    "What is 10 - 4?",
    "What is 6 + 7?",
    "What is 8 * 9? [fault=500]",
    "What is 100 - 1?",
]
Answer = Callable[[Agent], Awaitable[dict[str, Any]]]


async def judge_03(answer: Answer, *, close: bool = True) -> Any:
    """The exercise's setup (an agent with a client of its own, no retries), the learner's cell, the check."""

    async def exercise() -> dict[str, Any]:
        agent = Agent(
            name="calculator", instructions="Use the tools.", tools=MATH_TOOLS, client=make_client(max_retries=0)
        )
        answers = await answer(agent)
        if close:
            await agent.client.close()  # type: ignore[union-attr]
        return {**answers, "client": agent.client}

    answers = await exercise()
    if not close:
        await answers["client"].close()  # the test tidies up what the learner left open, after the check
        answers["client"] = OpenClient()
    return check("03", prompts=PROMPTS, **answers)


class OpenClient:
    def is_closed(self) -> bool:
        return False


async def settled(agent: Agent) -> dict[str, Any]:
    outcomes = await run_settled(agent, PROMPTS)
    return {"outcomes": outcomes, "failed": [i for i, o in enumerate(outcomes) if o.status == "rejected"]}


async def gathered_exceptions(agent: Agent) -> dict[str, Any]:
    outcomes = await asyncio.gather(*(agent.run(p) for p in PROMPTS), return_exceptions=True)
    return {"outcomes": outcomes, "failed": [i for i, o in enumerate(outcomes) if isinstance(o, BackendError)]}


async def collected_as_completed(agent: Agent) -> dict[str, Any]:
    by_index = {index: outcome async for index, outcome in as_completed(agent, PROMPTS)}
    outcomes = [by_index[i] for i in range(len(PROMPTS))]
    return {"outcomes": outcomes, "failed": [i for i, o in enumerate(outcomes) if o.status == "rejected"]}


async def counted_from_one(agent: Agent) -> dict[str, Any]:
    outcomes = await run_settled(agent, PROMPTS)
    return {"outcomes": outcomes, "failed": [i for i, o in enumerate(outcomes, 1) if o.status == "rejected"]}


async def prompts_not_indices(agent: Agent) -> dict[str, Any]:
    outcomes = await run_settled(agent, PROMPTS)
    return {
        "outcomes": outcomes,
        "failed": [p for p, o in zip(PROMPTS, outcomes, strict=True) if o.status == "rejected"],
    }


async def condition_upside_down(agent: Agent) -> dict[str, Any]:
    outcomes = await run_settled(agent, PROMPTS)
    return {"outcomes": outcomes, "failed": [i for i, o in enumerate(outcomes) if o.status == "fulfilled"]}


async def failures_dropped(agent: Agent) -> dict[str, Any]:
    outcomes = [o for o in await run_settled(agent, PROMPTS) if o.status == "fulfilled"]
    return {"outcomes": outcomes, "failed": [1, 4]}


async def finishing_order(agent: Agent) -> dict[str, Any]:
    outcomes = [outcome async for _, outcome in as_completed(agent, PROMPTS)]
    return {"outcomes": outcomes, "failed": [i for i, o in enumerate(outcomes) if o.status == "rejected"]}


async def settled_not_awaited(agent: Agent) -> dict[str, Any]:
    pending = run_settled(agent, PROMPTS)
    pending.close()  # (the test's tidying: the learner's `outcomes` is this coroutine)
    return {"outcomes": [pending] * len(PROMPTS), "failed": [1, 4]}


async def failure_count_not_indices(agent: Agent) -> dict[str, Any]:
    outcomes = await run_settled(agent, PROMPTS)
    return {"outcomes": outcomes, "failed": outcomes.report.failed}


@pytest.mark.parametrize("answer", [settled, gathered_exceptions, collected_as_completed])
async def test_03_accepts_every_outcome_kept_three_ways(answer: Answer) -> None:
    feedback = await judge_03(answer)
    assert feedback.passed, feedback
    assert "failed: [1, 4]" in feedback.messages[0] and "client you made is closed" in feedback.messages[1]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (counted_from_one, "indices start at 0"),
        (prompts_not_indices, "not their indices"),
        (condition_upside_down, "those are the conversations that succeeded"),
        (failures_dropped, "4 outcomes for 6 prompts"),
        (finishing_order, "answers another prompt"),
        (settled_not_awaited, "not yet awaited"),
        (failure_count_not_indices, "should be a list of indices"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_03_refuses_each_mistake_and_names_it(answer: Answer, words: str) -> None:
    feedback = await judge_03(answer)
    assert not feedback.passed and words in feedback.messages[0], feedback


async def test_03_refuses_a_client_left_open() -> None:
    feedback = await judge_03(settled, close=False)
    assert not feedback.passed and "the client is still open" in feedback.messages[0], feedback


# -- 04: speedup and efficiency of a batch that ran two at a time ------------------------------------------


def batch_report() -> BatchReport:
    """The exercise's batch: 1, 2, 3 and 4 s, two at a time, so that its efficiency is well under 100%."""
    agent = Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS)
    prompts = [f"What is {i} + {i}? [duration={1 + i}]" for i in range(4)]
    return asyncio.run(run_bounded(agent, prompts, max_concurrency=2)).report


@pytest.fixture(scope="module")
def report() -> BatchReport:
    return batch_report()


def by_hand(report: BatchReport) -> dict[str, float]:
    durations = [c.duration for c in report.conversations]
    return {"speedup": sum(durations) / report.wall_time, "efficiency": max(durations) / report.wall_time}


def from_ends(report: BatchReport) -> dict[str, float]:
    spans = [c.end - c.start for c in report.conversations]
    return {"speedup": round(sum(spans) / report.wall_time, 2), "efficiency": round(max(spans) / report.wall_time, 2)}


MISTAKES_04 = {
    "guessed 100%": (lambda r, d: {**by_hand(r), "efficiency": 1.0}, "100% is the ideal"),
    "upside down": (lambda r, d: {**by_hand(r), "speedup": r.wall_time / sum(d)}, "wall / sum, upside down"),
    "N conversations": (lambda r, d: {**by_hand(r), "speedup": len(d)}, "the number of conversations"),
    "shortest": (lambda r, d: {**by_hand(r), "efficiency": min(d) / r.wall_time}, "the shortest conversation"),
    "mean": (lambda r, d: {**by_hand(r), "efficiency": statistics.mean(d) / r.wall_time}, "the average duration"),
    "percent": (lambda r, d: {**by_hand(r), "efficiency": 100 * max(d) / r.wall_time}, "not a percentage"),
    "ends": (lambda r, d: {**by_hand(r), "speedup": sum(c.end for c in r.conversations) / r.wall_time}, "end times"),
}


@pytest.mark.parametrize("way", [by_hand, from_ends])
def test_04_accepts_the_figures_computed_two_ways(report: BatchReport, way: Callable[[BatchReport], Any]) -> None:
    feedback = check("04", report=report, **way(report))
    assert feedback.passed, feedback
    assert f"efficiency of {report.efficiency:.0%}" in feedback.messages[2]
    assert report.efficiency < 0.9, "the exercise's batch must be far from the ideal, or a guess would pass"


@pytest.mark.parametrize("mistake", MISTAKES_04)
def test_04_refuses_each_mistake_and_names_it(report: BatchReport, mistake: str) -> None:
    answer, words = MISTAKES_04[mistake]
    feedback = check("04", report=report, **answer(report, [c.duration for c in report.conversations]))
    assert not feedback.passed and words in " ".join(feedback.messages), feedback


# -- 04b: the headline chart, read from the Figure's bars, each with its own name ---------------------------


def headline(report: BatchReport) -> Figure:
    durations = [c.duration for c in report.conversations]
    return bars(
        ["sum of durations", "longest", "wall time"], [sum(durations), max(durations), report.wall_time], title="04"
    )


def barh_in_another_order(report: BatchReport) -> Figure:
    figure = Figure()
    ax = figure.add_subplot()
    ax.barh(["wall", "slowest", "sum"], [report.wall_time, report.longest_duration, report.sum_of_durations])
    return figure


def pyplot_with_synonyms(report: BatchReport) -> Figure:
    durations = [c.duration for c in report.conversations]
    plt.figure()
    plt.bar(["total", "max duration", "elapsed"], [sum(durations), max(durations), report.wall_time])
    plt.ylabel("seconds")
    return plt.gcf()


def one_series_per_bar_with_a_legend(report: BatchReport) -> Figure:
    figure, ax = plt.subplots()
    ax.bar(0, report.sum_of_durations, label="sum of durations")
    ax.bar(1, report.longest_duration, label="longest conversation")
    ax.bar(2, report.wall_time, label="wall clock")
    ax.legend()
    return figure


def ticks_set_by_hand(report: BatchReport) -> Figure:
    figure, ax = plt.subplots()
    ax.bar(
        [0, 1, 2], [round(report.sum_of_durations, 2), round(report.longest_duration, 2), round(report.wall_time, 2)]
    )
    ax.set_xticks([0, 1, 2], ["Sum", "Longest", "Wall"])
    return figure


def plt_show_kept(report: BatchReport) -> Any:
    plt.bar(["sum", "longest", "wall"], [report.sum_of_durations, report.longest_duration, report.wall_time])
    return plt.show()  # the mistake: show() returns None


def axes_kept(report: BatchReport) -> Any:
    _, ax = plt.subplots()
    ax.bar(["sum", "longest", "wall"], [report.sum_of_durations, report.longest_duration, report.wall_time])
    return ax


def labels_in_the_wrong_order(report: BatchReport) -> Figure:
    durations = [c.duration for c in report.conversations]
    return bars(["sum", "longest", "wall"], [report.wall_time, max(durations), sum(durations)], title="04")


def names_only_in_the_title(report: BatchReport) -> Figure:
    figure, ax = plt.subplots()
    ax.bar(range(3), [report.sum_of_durations, report.longest_duration, report.wall_time])
    ax.set_title("sum of durations, longest, wall time")
    return figure


def milliseconds(report: BatchReport) -> Figure:
    seconds = [report.sum_of_durations, report.longest_duration, report.wall_time]
    return bars(["sum", "longest", "wall"], [1000 * s for s in seconds], title="ms")


def mean_for_the_longest(report: BatchReport) -> Figure:
    durations = [c.duration for c in report.conversations]
    return bars(["sum", "longest", "wall"], [sum(durations), statistics.mean(durations), report.wall_time], title="x")


def speedup_drawn(report: BatchReport) -> Figure:
    return bars(["sum", "speedup", "wall"], [report.sum_of_durations, report.speedup, report.wall_time], title="x")


def no_wall_bar(report: BatchReport) -> Figure:
    return bars(["sum", "longest"], [report.sum_of_durations, report.longest_duration], title="x")


def letters_for_names(report: BatchReport) -> Figure:
    return bars(["a", "b", "c"], [report.sum_of_durations, report.longest_duration, report.wall_time], title="x")


def nothing_drawn(report: BatchReport) -> Figure:
    return Figure()


@pytest.fixture(autouse=True)
def close_pyplot() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.mark.parametrize(
    "draw",
    [headline, barh_in_another_order, pyplot_with_synonyms, one_series_per_bar_with_a_legend, ticks_set_by_hand],
)
def test_04b_accepts_the_headline_chart_drawn_five_ways(
    report: BatchReport, draw: Callable[[BatchReport], Any]
) -> None:
    feedback = check("04b", report=report, figure=draw(report))
    assert feedback.passed, feedback
    assert "three named bars" in feedback.messages[0] and "some conversations waited" in feedback.messages[1]


@pytest.mark.parametrize(
    ("draw", "words"),
    [
        (plt_show_kept, "`plt.show()` shows the chart and gives back None"),
        (axes_kept, "not the Axes: its Figure is `ax.figure`"),
        (labels_in_the_wrong_order, "is named 'wall', which says the wall time"),
        (names_only_in_the_title, "the names are only in the title"),
        (milliseconds, "in milliseconds"),
        (mean_for_the_longest, "no bar is as high as the longest conversation"),
        (speedup_drawn, "no bar is as high as the longest conversation"),
        (no_wall_bar, "no bar is as high as the wall time"),
        (letters_for_names, "none is named."),
        (nothing_drawn, "no bars"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
def test_04b_refuses_each_mistake_and_names_it(
    report: BatchReport, draw: Callable[[BatchReport], Any], words: str
) -> None:
    feedback = check("04b", report=report, figure=draw(report))
    assert not feedback.passed and words in feedback.messages[0], feedback
    assert not re.search(r"(?<![\d.])0\.80\b", feedback.messages[0]), "a bar's width (0.80) is no bar"
