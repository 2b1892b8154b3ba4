"""run_batched: whole tool-calling conversations through the offline Batch API, one batch per turn, resumable."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types import Batch as ApiBatch

from agentlab import Agent, BackendError, BatchReport, ConfigurationError, Fulfilled, MaxTurnsExceeded, Rejected
from agentlab.batch import BatchedReport, Price, SimulatedCrash, crash_at_round, run_batched
from agentlab.batch.run import apply_results
from agentlab.batch.state import Round, RunState
from agentlab.offline import LatencyModel, ServerConfig, start
from agentlab.tools.math import MATH_TOOLS
from agentlab.views import Lanes, Quiet


def config(batch_seconds: float = 1.0, window: float = 24 * 3600.0) -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.05), batch_seconds=batch_seconds, batch_window_seconds=window)


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return config()


def prompts_and_answers(n: int) -> tuple[list[str], list[tuple[int, int]]]:
    """Conversations of 2 turns (one tool call, then the answer) and of 3 (two calls one after the other)."""
    prompts, expected = [], []
    for i in range(n):
        if i % 2:
            prompts.append(f"What is ({i} + 2) * 3?")
            expected.append(((i + 2) * 3, 3))
        else:
            prompts.append(f"What is {i} + 5?")
            expected.append((i + 5, 2))
    return prompts, expected


def batch_stats(server: Any) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(server.url + "/offline/batch-stats").json()
    return stats


async def batched(server: Any, prompts: list[str], sent: list[str] | None = None, **options: Any) -> Any:
    """Run the prompts batched; ``sent`` collects the method and path of every request the client makes."""

    async def record(request: httpx.Request) -> None:
        if sent is not None:
            sent.append(f"{request.method} {request.url.path}")

    http = httpx.AsyncClient(event_hooks={"request": [record]})
    async with AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0, http_client=http) as client:
        agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client, **options)
        return await run_batched(agent, prompts, poll_interval=0.05)


def assert_right(outcomes: Any, expected: list[tuple[int, int]]) -> None:
    assert len(outcomes) == len(expected)
    for i, (outcome, (value, turns)) in enumerate(zip(outcomes, expected, strict=True)):
        assert isinstance(outcome, Fulfilled), (i, outcome)
        assert outcome.value.output_text.endswith(f"= {value}."), (i, outcome.value.output_text)
        assert outcome.value.turns == turns, (i, outcome.value.turns)


async def test_1000_conversations_go_through_batches_turn_by_turn(server: Any) -> None:
    prompts, expected = prompts_and_answers(1000)
    before, sent = batch_stats(server), []
    outcomes = await batched(server, prompts, sent)
    assert_right(outcomes, expected)
    after = batch_stats(server)
    # Exactly one request per conversation per turn, and none of them live.
    assert after["lines"] - before["lines"] == sum(turns for _, turns in expected) == 2500
    assert after["repeated"] == {} and after["batches"] - before["batches"] == 3
    assert "POST /v1/responses" not in sent and sent.count("POST /v1/batches") == 3
    assert sent.count("POST /v1/files") == 3
    report = outcomes.report
    assert isinstance(report, BatchReport) and isinstance(report, BatchedReport) and report.n == 1000
    assert [r.requests for r in report.rounds] == [1000, 1000, 500]
    assert all(r.status == "completed" for r in report.rounds)
    assert report.cost is not None and report.cost.discount == pytest.approx(0.5)
    first = outcomes[1]
    assert isinstance(first, Fulfilled) and [s.kind for s in first.value.spans] == [
        "model",
        "tool",
        "model",
        "tool",
        "model",
    ]
    model, tool = first.value.spans[:2]
    assert model.input_tokens and model.output_tokens and tool.call_id  # typed spans, as Agent.run records them
    assert first.value.usage.input_tokens == sum(s.input_tokens or 0 for s in first.value.spans)
    assert "cost" in str(report) and "round 3" in str(report)


RUN_IN_A_CHILD = """
import asyncio, sys
from openai import AsyncOpenAI
from agentlab import Agent
from agentlab.batch import run_batched
from agentlab.tools.math import MATH_TOOLS

async def main():
    async with AsyncOpenAI(base_url=sys.argv[1], api_key="offline") as client:
        agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
        prompts = [f"What is ({i} + 2) * 3?" if i % 2 else f"What is {i} + 5?" for i in range(int(sys.argv[3]))]
        await run_batched(agent, prompts, state_path=sys.argv[2], poll_interval=0.05)

asyncio.run(main())
"""


async def test_a_run_killed_between_rounds_resumes_and_sends_no_turn_twice(tmp_path: Path) -> None:
    state_path = tmp_path / "state.json"
    prompts, expected = prompts_and_answers(200)
    with start(config(batch_seconds=10)) as server:  # round 2 in flight for 0.5 s: time to kill the child in it
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", RUN_IN_A_CHILD, server.base_url, str(state_path), "200"
        )
        try:
            state = wait_for_state(state_path, lambda s: s["round"] == 2 and (s["pending"] or {}).get("batch_id"))
        finally:
            child.kill()
            await child.wait()
        assert child.returncode == -signal.SIGKILL
        # Pretend it died a moment earlier still: after creating round 2's batch, before saving its id.
        state = json.loads(state_path.read_text())
        state["pending"]["batch_id"] = None
        state_path.write_text(json.dumps(state))

        outcomes = await run_on(server, prompts, state_path)  # the dead child's lock went with it
        assert_right(outcomes, expected)
        assert outcomes.report.notes == ()  # nothing was lost: the batch was found again
        stats = batch_stats(server)
        assert stats["repeated"] == {}, "a turn was sent twice"
        assert stats["lines"] == 500 and stats["batches"] == 3
        assert [r.round for r in outcomes.report.rounds] == [1, 2, 3]
        again = await run_on(server, prompts, state_path)  # a finished run is read back, without a new batch
        assert [o.value.output_text for o in again] == [o.value.output_text for o in outcomes]
        assert batch_stats(server)["batches"] == 3


async def run_on(server: Any, prompts: list[str], state_path: Path, **options: Any) -> Any:
    async with AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0) as client:
        agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
        return await run_batched(agent, prompts, state_path=state_path, poll_interval=0.05, **options)


def wait_for_state(path: Path, ready: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state: dict[str, Any] = json.loads(path.read_text())
            if ready(state):
                return state
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    raise AssertionError("the child never got to round 2")


async def test_a_batch_the_server_lost_is_sent_again_and_no_answered_turn_twice(tmp_path: Path) -> None:
    """Issue 24 #9: the run dies in round 2, the server restarts (and forgets its batches), the run resumes."""
    state_path = tmp_path / "state.json"
    prompts, expected = prompts_and_answers(20)
    with start(config()) as first:
        with pytest.raises(SimulatedCrash):
            await run_on(first, prompts, state_path, progress=crash_at_round(2))
    lost = json.loads(state_path.read_text())["pending"]["batch_id"]
    with start(config()) as restarted:  # a new server: it never heard of round 2's file or batch
        outcomes = await run_on(restarted, prompts, state_path)
        stats = batch_stats(restarted)
    assert_right(outcomes, expected)
    # Round 1's answers were in the state: only rounds 2 and 3 went to the new server, each turn once.
    assert stats["repeated"] == {} and stats["lines"] == 20 + 10 and stats["batches"] == 2
    (note,) = outcomes.report.notes
    assert f"round 2: the server no longer knew {lost}" in note and "20 requests were sent again" in note
    assert note in str(outcomes.report)


async def test_two_runs_on_one_state_file_do_not_both_send(server: Any, tmp_path: Path) -> None:
    """Issue 24 #10: the second run on a state file in use stops at once, before it sends anything."""
    state_path = tmp_path / "state.json"
    prompts, expected = prompts_and_answers(6)
    before = batch_stats(server)
    first, second = await asyncio.gather(
        run_on(server, prompts, state_path), run_on(server, prompts, state_path), return_exceptions=True
    )
    assert isinstance(second, ConfigurationError) and "another run is using the state file" in str(second)
    assert_right(first, expected)
    after = batch_stats(server)
    assert (
        after["repeated"] == {} and after["lines"] - before["lines"] == 15 and after["batches"] - before["batches"] == 3
    )
    again = await run_on(server, prompts, state_path)  # once the first run ended, the file is free again
    assert [o.value.output_text for o in again] == [o.value.output_text for o in first]


@pytest.mark.parametrize("content", ['"a string"', "null", "[1, 2]", "3", '{"version": 2}', "not json"])
async def test_a_state_file_that_is_not_a_state_is_a_clear_error(tmp_path: Path, content: str) -> None:
    """Issue 24 #11: whatever JSON the file holds, a ConfigurationError that names it; the file is left alone."""
    state_path = tmp_path / "state.json"
    state_path.write_text(content)
    with pytest.raises(ConfigurationError, match="is not the state file of a batched run"):
        await run_batched(Agent(name="a", instructions="."), ["Hi"], state_path=state_path)
    assert state_path.read_text() == content


async def test_a_state_path_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a folder: pass the path of a file in it"):
        await run_batched(Agent(name="a", instructions="."), ["Hi"], state_path=tmp_path)


async def test_a_state_file_of_another_run_is_refused_and_left_alone(server: Any, tmp_path: Path) -> None:
    state_path = tmp_path / "state.json"

    async def run(prompts: list[str], **agent_options: Any) -> Any:
        async with AsyncOpenAI(base_url=server.base_url, api_key="offline") as client:
            agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client, **agent_options)
            return await run_batched(agent, prompts, state_path=state_path, poll_interval=0.05)

    await run(["What is 2 + 3?", "Hello!"])
    saved = state_path.read_bytes()
    with pytest.raises(ConfigurationError, match="another run"):
        await run(["What is 2 + 4?", "Hello!"])
    with pytest.raises(ConfigurationError, match="another run"):
        await run(["What is 2 + 3?", "Hello!"], max_turns=3)
    assert state_path.read_bytes() == saved
    with pytest.raises(ConfigurationError, match="does not exist"):
        await run_batched(Agent(name="a", instructions="."), ["Hi"], state_path=tmp_path / "no" / "s.json")


class CancelRound(Quiet):
    """A progress view that cancels the batch of one round the first time it sees it."""

    def __init__(self, base_url: str, round_number: int) -> None:
        self.client, self.round = OpenAI(base_url=base_url, api_key="x"), round_number
        self.seen: list[tuple[int, str]] = []

    def round_update(self, round_number: int, batch_id: str, status: str, finished: int, total: int) -> None:
        self.seen.append((round_number, status))
        if round_number == self.round and status == "validating":
            self.client.batches.cancel(batch_id)


async def test_a_cancelled_batch_rejects_its_conversations_and_the_others_finish() -> None:
    prompts = ["Hello!", "What is 2 + 3?", "Good morning!", "What is 7 * 6?"]
    with start(config(batch_seconds=60)) as server:  # 0.3 s of validating: time to cancel it
        display = CancelRound(server.base_url, 2)
        async with AsyncOpenAI(base_url=server.base_url, api_key="offline") as client:
            agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
            outcomes = await run_batched(agent, prompts, poll_interval=0.05, progress=display)
    assert [o.status for o in outcomes] == ["fulfilled", "rejected", "fulfilled", "rejected"]
    reason = outcomes[1].reason if isinstance(outcomes[1], Rejected) else None
    assert isinstance(reason, BackendError) and "cancelled" in str(reason)
    assert (1, "in_progress") in display.seen or (1, "validating") in display.seen
    assert outcomes.report.rounds[1].status == "cancelled" and outcomes.report.failed == 2


async def test_an_expired_batch_keeps_what_it_answered() -> None:
    prompts = [f"What is {i} + 1?" for i in range(400)]
    with start(config(batch_seconds=60, window=30)) as server:
        outcomes = await batched(server, prompts)
    statuses = [o.status for o in outcomes]
    assert "fulfilled" in statuses and "rejected" in statuses
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Rejected):
            assert "expired" in str(outcome.reason)
        else:
            assert outcome.value.output_text.endswith(f"= {i + 1}.")


async def test_max_turns_holds_per_conversation(server: Any) -> None:
    outcomes = await batched(server, ["What is (1 + 2) * 3?", "What is 4 + 4?"], max_turns=2)
    assert isinstance(outcomes[0], Rejected) and isinstance(outcomes[0].reason, MaxTurnsExceeded)
    assert isinstance(outcomes[1], Fulfilled) and outcomes[1].value.output_text.endswith("= 8.")


async def test_progress_shows_each_round_and_cost_uses_the_table_given(server: Any, capsys: Any) -> None:
    async with AsyncOpenAI(base_url=server.base_url, api_key="offline") as client:
        agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
        prices = {"gpt-5-mini": Price(1.0, 1.0, batch_discount=0.25)}
        outcomes = await run_batched(agent, ["What is 2 + 2?"], poll_interval=0.05, progress=True, prices=prices)
        lanes = Lanes(file=io.StringIO())
        await run_batched(agent, ["What is (1 + 2) * 3?", "Hello!"], poll_interval=0.05, progress=lanes)
    err = capsys.readouterr().err
    assert "run_batched" in err and "round 2: completed, 1/1 requests" in err and "1/1" in err
    cost = outcomes.report.cost
    usage = outcomes[0].value.usage
    assert cost.live == pytest.approx(usage.total_tokens / 1e6) and cost.discount == pytest.approx(0.25)
    # the same views as the live runners: each conversation's turns and tool calls, then its end
    chain, hello = lanes.rows
    assert (chain.status, chain.turns, hello.status, hello.turns) == ("done", 3, "done", 1)
    assert [text for kind, text in chain.pieces if kind == "call"] == [
        "→ sum_numbers(a=1, b=2)",
        "→ multiply_numbers(a=3, b=3)",
    ]
    assert "round 3 (batch_" in str(lanes) and chain.text.endswith("= 9.")


async def test_a_failed_batch_gives_each_of_its_conversations_the_reason() -> None:
    agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS)
    state = RunState.start(agent, ["What is 1 + 1?", "Hello!"])
    pending = Round(1, "file-1", {"x-conv-0-turn-1": 0, "x-conv-1-turn-1": 1}, time.time())
    failed = ApiBatch.model_validate(
        {
            "id": "batch_1",
            "object": "batch",
            "endpoint": "/v1/responses",
            "input_file_id": "file-1",
            "completion_window": "24h",
            "created_at": 0,
            "status": "failed",
            "errors": {"object": "list", "data": [{"code": "too_many_tasks", "line": None, "message": "Too many."}]},
        }
    )
    await apply_results(agent, state, pending, failed, {}, Quiet())
    assert [c.status for c in state.conversations] == ["rejected", "rejected"]
    assert all("ended failed" in (c.error or "") and "too_many_tasks" in (c.error or "") for c in state.conversations)
