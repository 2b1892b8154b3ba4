"""Exercise 08 checked on real learner code: a run crashed in round 2, resumed (or not), and priced.

Each attempt gets a server of its own, as the exercise's first cell starts one: the check counts the batches
that server received, round by round. The provider's batch discount is 40%, as in the exercise, so that every
known mistake with the saving gives another figure (at one half, "saved" and "batched" are the same number).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, run_bounded
from agentlab.batch import Price, SimulatedCrash, crash_at_round, run_batched
from agentlab.exercises import Feedback, check, hints
from agentlab.offline import LatencyModel, ServerConfig, start
from agentlab.tools.math import MATH_TOOLS

PROMPTS = [f"What is ({i} + 1) * 2?" if i % 3 else f"What is {i} + 4?" for i in range(12)]
PRICES = {"gpt-5-mini": Price(0.25, 2.00, batch_discount=0.4)}
Learner = Callable[[Agent, list[str], Path], Awaitable[tuple[Any, Any]]]


async def attempt(tmp_path: Path, learner: Learner) -> Feedback:
    """Crash a batched run in round 2, as the exercise does, then run the learner's cell and check it."""
    state = tmp_path / "state.json"
    with start(ServerConfig(LatencyModel(time_scale=0.05), batch_seconds=1.0)) as server:
        async with AsyncOpenAI(base_url=server.base_url, api_key="offline") as client:
            agent = Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
            assert agent.model in PRICES
            with pytest.raises(SimulatedCrash):
                await run_batched(
                    agent, PROMPTS, state_path=state, prices=PRICES, poll_interval=0.05, progress=crash_at_round(2)
                )
            outcomes, saved = await learner(agent, PROMPTS, state)
        return check("08", prompts=PROMPTS, outcomes=outcomes, saved=saved, server=server, prices=PRICES)


async def resume(agent: Agent, prompts: list[str], state: Path | str, **options: Any) -> Any:
    return await run_batched(agent, prompts, state_path=state, poll_interval=0.05, **options)


# -- Right answers ----------------------------------------------------------------------------------------


async def resumed(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.live - outcomes.report.cost.batched


async def resumed_with_a_string_path(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=str(state), prices=PRICES)
    return outcomes, outcomes.report.cost.saved


async def saving_from_the_discount(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.live * PRICES[agent.model].batch_discount


async def a_fresh_run_tried_first_then_resumed(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    await run_batched(agent, prompts, prices=PRICES, poll_interval=0.05)  # a wrong first try on the same server
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.saved


# -- Wrong answers ----------------------------------------------------------------------------------------


async def not_awaited(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = run_batched(agent, prompts, state_path=state, prices=PRICES)
    outcomes.close()  # what the learner left behind: a coroutine that never ran
    return outcomes, 0.01


async def live_instead(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    return await run_bounded(agent, prompts, max_concurrency=10), 0.01


async def fresh_run(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, prices=PRICES, poll_interval=0.05)  # no state_path
    return outcomes, outcomes.report.cost.saved


async def another_state_file(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state.with_name("mine.json"), prices=PRICES)
    return outcomes, outcomes.report.cost.saved


async def state_deleted_then_started_again(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    state.unlink()  # noqa: ASYNC240 - the learner's "the crash broke it": the new run sends round 1 again
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.saved


async def sorted_answers(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return sorted(outcomes, key=lambda o: o.value.output_text), outcomes.report.cost.saved


async def batched_cost_as_saving(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.batched


async def live_cost_as_saving(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.live


async def share_as_saving(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.discount


async def saving_upside_down(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.batched - outcomes.report.cost.live


async def half_as_in_the_lesson(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state, prices=PRICES)
    return outcomes, outcomes.report.cost.live / 2


async def priced_without_the_table(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await resume(agent, prompts, state)  # the list price: half off, not this provider's 40%
    return outcomes, outcomes.report.cost.saved


@pytest.mark.parametrize(
    "learner",
    [resumed, resumed_with_a_string_path, saving_from_the_discount, a_fresh_run_tried_first_then_resumed],
)
async def test_right_answers_pass(tmp_path: Path, learner: Learner) -> None:
    feedback = await attempt(tmp_path, learner)
    assert feedback.passed, feedback
    assert "12 answers in order, each of the 3 rounds sent once, by the run that crashed" in str(
        feedback
    ) and "(40%)" in str(feedback)


@pytest.mark.parametrize(
    ("learner", "named"),
    [
        (not_awaited, "never awaited"),
        (live_instead, "came from run_bounded"),
        (fresh_run, "this run sent it again"),
        (another_state_file, "this run sent it again"),
        (state_deleted_then_started_again, "this run sent it again"),
        (sorted_answers, "sorted"),
        (batched_cost_as_saving, "is what the batched run cost"),
        (live_cost_as_saving, "would cost live"),
        (share_as_saving, "is the share saved (40%)"),
        (saving_upside_down, "wrong sign"),
        (half_as_in_the_lesson, "is half the live cost: this provider takes 40% off"),
        (priced_without_the_table, "Price the run with prices=PRICES"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[:30],
)
async def test_plausible_mistakes_are_named(tmp_path: Path, learner: Learner, named: str) -> None:
    feedback = await attempt(tmp_path, learner)
    assert not feedback.passed and named in str(feedback), feedback


def test_placeholders_and_hints() -> None:
    assert "fill in `outcomes`, `saved`" in str(check("08", prompts=PROMPTS, outcomes=..., saved=...))
    assert len(hints("08").items) == 3
