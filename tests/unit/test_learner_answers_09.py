"""Exercise 09 (time to first token), answered by real learner code: the agent and ``watch`` a learner writes.

Each answer is the exercise's TODO cell: an agent (streaming or not) and a ``watch(index, event)`` that records
one time per conversation; the cell then measures ``first_token`` from each result's start, as the notebook does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from agentlab import Agent, run_concurrent
from agentlab.exercises import check
from agentlab.records import AgentEvent
from agentlab.tools.math import MATH_TOOLS

PROMPTS = ["What is 1 + 2? [duration=4]", "What is 3 * 4? [duration=6]", "What is 9 - 5? [duration=3]"]
Watch = Callable[[dict[int, float]], Callable[[int, AgentEvent], None]]
TICK = 0.005  # seconds between the stall watch's looks at the clock


async def judge(make_watch: Watch, *, stream: bool = True) -> Any:
    """The exercise's cell with the learner's agent and watch, then its check cell.

    The check judges the first words by their share of the answer turn (tens to hundreds of milliseconds here).
    When this process gets no CPU for a while (a neighbour test printing 100 MB on a 2-core machine), every text
    delta of the turn arrives at once at its end, and a right answer reads as "100% into the turn". So the batch
    runs beside a watch of the event loop's stalls; a verdict given while the loop stalled for 30% of the
    shortest answer turn or more says nothing about the learner's code, and the batch runs again (up to 3 times).
    """
    for _ in range(3):
        agent = Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS, stream=stream)
        first_words: dict[int, float] = {}
        stalls: list[float] = []
        watching = asyncio.create_task(watch_stalls(stalls))
        try:
            results = await run_concurrent(agent, PROMPTS, on_event=make_watch(first_words))
        finally:
            watching.cancel()
        first_token = {i: first_words[i] - results[i].started_at for i in first_words}
        feedback = check("09", results=results, first_token=first_token)
        turns = [[s for s in r.spans if s.kind == "model"][-1].duration for r in results]
        if max(stalls, default=0.0) < 0.3 * min(turns):
            return feedback
    return feedback


async def watch_stalls(stalls: list[float]) -> None:
    """How late each tick of the event loop came: a stall is the time this process did not run."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        stalls.append(time.perf_counter() - before - TICK)


def first_delta_by_setdefault(first_words: dict[int, float]) -> Callable[[int, AgentEvent], None]:
    def watch(index: int, event: AgentEvent) -> None:
        if event.kind == "text_delta":
            first_words.setdefault(index, event.time)

    return watch


def first_delta_by_membership_and_own_clock(first_words: dict[int, float]) -> Callable[[int, AgentEvent], None]:
    def watch(index: int, event: AgentEvent) -> None:
        if event.kind == "text_delta" and index not in first_words:
            first_words[index] = time.perf_counter()

    return watch


def last_delta(first_words: dict[int, float]) -> Callable[[int, AgentEvent], None]:
    def watch(index: int, event: AgentEvent) -> None:
        if event.kind == "text_delta":
            first_words[index] = event.time  # the mistake: every delta overwrites the one before

    return watch


def last_model_start(first_words: dict[int, float]) -> Callable[[int, AgentEvent], None]:
    def watch(index: int, event: AgentEvent) -> None:
        if event.kind == "model_start":
            first_words[index] = event.time  # the answer turn's start: before any text came

    return watch


def first_event_of_any_kind(first_words: dict[int, float]) -> Callable[[int, AgentEvent], None]:
    def watch(index: int, event: AgentEvent) -> None:
        first_words.setdefault(index, event.time)

    return watch


def last_model_end(first_words: dict[int, float]) -> Callable[[int, AgentEvent], None]:
    def watch(index: int, event: AgentEvent) -> None:
        if event.kind == "model_end":
            first_words[index] = event.time

    return watch


@pytest.mark.parametrize("make_watch", [first_delta_by_setdefault, first_delta_by_membership_and_own_clock])
async def test_09_accepts_the_first_text_delta_recorded_two_ways(make_watch: Watch) -> None:
    feedback = await judge(make_watch)
    assert feedback.passed, feedback
    assert "into its answer turn" in feedback.messages[0] and "still writing it" in feedback.messages[-1]


@pytest.mark.parametrize(
    ("make_watch", "stream", "words"),
    [
        (first_delta_by_setdefault, False, "`first_token` is empty: no text_delta reached `watch`"),
        (last_model_start, False, "the moment its answer turn began"),
        (last_model_start, True, "the moment its answer turn began"),
        (first_event_of_any_kind, True, "before its answer turn began"),
        (last_delta, True, "is that the last text_delta?"),
        (last_model_end, False, "when its answer turn had already ended"),
        (last_model_end, True, "when its answer turn had already ended"),
    ],
    ids=lambda x: getattr(x, "__name__", str(x))[:30],
)
async def test_09_refuses_each_mistake_and_names_it(make_watch: Watch, stream: bool, words: str) -> None:
    feedback = await judge(make_watch, stream=stream)
    assert not feedback.passed and words in feedback.messages[0], feedback
