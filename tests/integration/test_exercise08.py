"""Exercise 08 checked on real learner code: a run crashed in round 2, resumed (or not), and priced."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from agentlab import Agent, run_bounded
from agentlab.batch import SimulatedCrash, crash_at_round, run_batched
from agentlab.exercises import Feedback, check, hints
from agentlab.offline import LatencyModel, ServerConfig
from agentlab.tools.math import MATH_TOOLS

PROMPTS = [f"What is ({i} + 1) * 2?" if i % 3 else f"What is {i} + 4?" for i in range(12)]
Learner = Callable[[Agent, list[str], Path], Awaitable[tuple[Any, Any]]]


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.05), batch_seconds=1.0)


async def attempt(server: Any, tmp_path: Path, learner: Learner) -> Feedback:
    """Crash a batched run in round 2, as the exercise does, then run the learner's cell and check it."""
    state = tmp_path / "state.json"

    async def run() -> tuple[Any, Any]:
        async with AsyncOpenAI(base_url=server.base_url, api_key="offline") as client:
            agent = Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
            with pytest.raises(SimulatedCrash):
                await run_batched(agent, PROMPTS, state_path=state, poll_interval=0.05, progress=crash_at_round(2))
            return await learner(agent, PROMPTS, state)

    outcomes, saved = await run()
    return check("08", prompts=PROMPTS, outcomes=outcomes, state_path=state, saved=saved)


def saving(outcomes: Any) -> float:
    cost = outcomes.report.cost
    return float(cost.live - cost.batched)


async def resumed(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=state, poll_interval=0.05)
    return outcomes, saving(outcomes)


async def resumed_with_a_string_path(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=str(state))
    return outcomes, outcomes.report.cost.saved


async def not_awaited(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = run_batched(agent, prompts, state_path=state)
    outcomes.close()  # what the learner left behind: a coroutine that never ran
    return outcomes, 0.01


async def live_instead(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_bounded(agent, prompts, max_concurrency=10)
    return outcomes, 0.01


async def fresh_run(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, poll_interval=0.05)  # no state_path: everything sent again
    return outcomes, saving(outcomes)


async def another_state_file(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=state.with_name("mine.json"), poll_interval=0.05)
    return outcomes, saving(outcomes)


async def sorted_answers(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=state, poll_interval=0.05)
    return sorted(outcomes, key=lambda o: o.value.output_text), saving(outcomes)


async def live_cost_as_saving(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=state, poll_interval=0.05)
    return outcomes, outcomes.report.cost.live


async def share_as_saving(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=state, poll_interval=0.05)
    return outcomes, outcomes.report.cost.discount


async def saving_upside_down(agent: Agent, prompts: list[str], state: Path) -> tuple[Any, Any]:
    outcomes = await run_batched(agent, prompts, state_path=state, poll_interval=0.05)
    return outcomes, outcomes.report.cost.batched - outcomes.report.cost.live


@pytest.mark.parametrize("learner", [resumed, resumed_with_a_string_path])
async def test_right_answers_pass(server: Any, tmp_path: Path, learner: Learner) -> None:
    feedback = await attempt(server, tmp_path, learner)
    assert feedback.passed, feedback
    assert "12 answers in order" in str(feedback) and "saved $" in str(feedback)


@pytest.mark.parametrize(
    ("learner", "named"),
    [
        (not_awaited, "never awaited"),
        (live_instead, "run_bounded"),
        (fresh_run, "fresh run"),
        (another_state_file, "fresh run"),
        (sorted_answers, "sorted"),
        (live_cost_as_saving, "would cost live"),
        (share_as_saving, "share saved"),
        (saving_upside_down, "wrong sign"),
    ],
)
async def test_plausible_mistakes_are_named(server: Any, tmp_path: Path, learner: Learner, named: str) -> None:
    feedback = await attempt(server, tmp_path, learner)
    assert not feedback.passed and named in str(feedback), feedback


def test_placeholders_and_hints() -> None:
    assert "fill in `outcomes`, `saved`" in str(check("08", prompts=PROMPTS, outcomes=..., saved=...))
    assert len(hints("08").items) == 3
