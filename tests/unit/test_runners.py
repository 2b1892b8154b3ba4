"""Runners: order, timing ratios, failure semantics, cancellation, progress and bad input.

Timing claims are ratios inside one run (the offline server's time scale keeps them fast)."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest

from agentlab import (
    Agent,
    BackendError,
    ConfigurationError,
    ConversationTimeout,
    Fulfilled,
    Rejected,
    as_completed,
    make_client,
    run_bounded,
    run_concurrent,
    run_serial,
    run_settled,
)
from agentlab.agent import EventHandler, Prompt
from agentlab.records import AgentEvent, RunResult
from agentlab.tools.math import MATH_TOOLS
from agentlab.views import ConversationBoard

AGENT = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS)


def last_number(text: str) -> float:
    return float(re.findall(r"-?\d+(?:\.\d+)?", text)[-1])


def sums(n: int, duration: float | None = None) -> list[str]:
    tag = f" [duration={duration}]" if duration else ""
    return [f"What is {i} + 100?{tag}" for i in range(n)]


async def no_retry_agent() -> Agent:
    return Agent(name="calc", instructions="", tools=MATH_TOOLS, client=make_client(max_retries=0))


async def test_serial_takes_the_sum_of_durations() -> None:
    await AGENT.run("What is 1 + 1?")  # warm up this loop's client, so that its set-up is not timed
    results = await run_serial(AGENT, [f"What is 5 + 4? [duration={d}]" for d in (5, 4)])
    report = results.report
    assert [last_number(r.output_text) for r in results] == [9, 9]
    print(f"\nserial: wall {report.wall_time:.3f} s, sum {report.sum_of_durations:.3f} s")
    assert report.wall_time >= 0.95 * report.sum_of_durations
    # forced durations: 5 s and 4 s at the test time scale, so the ratio is 5:4
    first, second = report.conversations
    assert first.duration / second.duration == pytest.approx(5 / 4, rel=0.2)
    assert second.start >= first.end


async def test_concurrent_takes_about_the_longest_and_keeps_input_order() -> None:
    # 1 s conversations at the test scale: a fresh loop's first batch pays ~0.1 s to make its client and
    # connections, which against 0.15 s conversations would measure start-up rather than concurrency.
    prompts = sums(20, duration=20)
    results = await run_concurrent(AGENT, prompts)
    report = results.report
    print(
        f"\nconcurrent N=20: wall {report.wall_time:.3f} s, longest {report.longest_duration:.3f} s, "
        f"efficiency {report.efficiency:.2f}, speedup {report.speedup:.1f}"
    )
    assert [last_number(r.output_text) for r in results] == [i + 100 for i in range(20)]
    assert report.efficiency >= 0.8
    assert report.speedup >= 10


async def test_concurrent_is_all_or_nothing_and_cancels_siblings() -> None:
    agent = await no_retry_agent()
    prompts = [*sums(5, duration=20), "What is 1 + 1? [fault=500]"]
    before = asyncio.all_tasks()
    with pytest.raises(BackendError, match="500"):
        await run_concurrent(agent, prompts)
    assert asyncio.all_tasks() == before  # no sibling is left running
    await agent.client.close()  # type: ignore[union-attr]


async def test_settled_keeps_every_outcome_in_order() -> None:
    agent = await no_retry_agent()
    faulty = {2, 5, 7}
    prompts = [f"What is {i} + 1?" + (" [fault=500]" if i in faulty else "") for i in range(10)]
    outcomes = await run_settled(agent, prompts)
    assert len(outcomes) == 10
    for i, outcome in enumerate(outcomes):
        if i in faulty:
            assert isinstance(outcome, Rejected) and outcome.status == "rejected"
            assert isinstance(outcome.reason, BackendError) and outcome.reason.status_code == 500
        else:
            assert isinstance(outcome, Fulfilled) and outcome.status == "fulfilled"
            assert last_number(outcome.value.output_text) == i + 1
    assert outcomes.report.failed == 3
    assert [c.index for c in outcomes.report.conversations] == list(range(10))
    await agent.client.close()  # type: ignore[union-attr]


async def test_bounded_limits_concurrency_and_times_out() -> None:
    running = 0
    peak = 0

    def count(index: int, event: AgentEvent) -> None:
        nonlocal running, peak
        if event.kind == "model_start" and event.detail == "turn 1":
            running += 1
            peak = max(peak, running)
        if event.kind == "model_end" and event.detail == "answer":
            running -= 1

    prompts = [*sums(8, duration=1), "What is 2 + 2? [fault=hang]"]
    outcomes = await run_bounded(AGENT, prompts, max_concurrency=3, timeout=1.0, on_event=count)
    assert peak == 3
    assert all(isinstance(o, Fulfilled) for o in outcomes[:8])
    hung = outcomes[8]
    assert isinstance(hung, Rejected) and isinstance(hung.reason, ConversationTimeout)
    assert "timeout=1 s" in str(hung.reason)
    assert "ConversationTimeout" in (outcomes.report.conversations[8].error or "")


async def test_as_completed_yields_in_finishing_order() -> None:
    prompts = ["What is 1 + 1? [duration=6]", "What is 2 + 2? [duration=1]", "What is 3 + 3? [duration=3]"]

    async def main() -> list[int]:
        return [index async for index, outcome in as_completed(AGENT, prompts) if isinstance(outcome, Fulfilled)]

    assert await main() == [1, 2, 0]


async def test_leaving_as_completed_early_cancels_the_rest() -> None:
    before = asyncio.all_tasks()
    stream = as_completed(AGENT, ["What is 1 + 1? [duration=1]", "What is 2 + 2? [duration=40]"])
    async with contextlib.aclosing(stream):
        async for index, _ in stream:
            assert index == 0
            break
    assert asyncio.all_tasks() == before


@pytest.mark.parametrize("runner", ["run_concurrent", "run_settled", "run_bounded"])
async def test_cancelling_the_caller_cancels_every_child(runner: str) -> None:
    before = asyncio.all_tasks()
    prompts = sums(50, duration=40)
    in_flight = 10 if runner == "run_bounded" else 50
    started: set[int] = set()
    all_started = asyncio.Event()

    def note(index: int, event: AgentEvent) -> None:  # cancel once every child that may run is in a model call
        if event.kind == "model_start":
            started.add(index)
            if len(started) == in_flight:
                all_started.set()

    if runner == "run_concurrent":
        batch = asyncio.create_task(run_concurrent(AGENT, prompts, on_event=note))
    elif runner == "run_settled":
        batch = asyncio.create_task(run_settled(AGENT, prompts, on_event=note))
    else:
        batch = asyncio.create_task(run_bounded(AGENT, prompts, max_concurrency=10, on_event=note))
    await asyncio.wait_for(all_started.wait(), timeout=30)
    assert len(asyncio.all_tasks() - before) > in_flight  # the batch and its children run: there is work to cancel
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert asyncio.all_tasks() == before
    # the loop still works afterwards
    again = await run_concurrent(AGENT, sums(3))
    assert len(again) == 3


async def test_log_prints_interleaved_tool_calls(capsys: pytest.CaptureFixture[str]) -> None:
    await run_concurrent(AGENT, ["What is 3 + 4? [duration=2]", "What is 5 + 6? [duration=1]"], log=True)
    stamped = capsys.readouterr().out.splitlines()
    assert all(re.match(r"^ *\d+\.\d\d s  \[conv \d\] ", line) for line in stamped), stamped  # time since start
    lines = [re.sub(r"^ *\d+\.\d\d s  ", "", line) for line in stamped]
    assert "[conv 0] → sum_numbers(a=3, b=4)" in lines
    assert "[conv 0] ← 7" in lines
    assert "[conv 1] → sum_numbers(a=5, b=6)" in lines
    assert "[conv 1] ← 11" in lines
    # conversation 1 is faster, so it answers first
    answered = [line for line in lines if "answered" in line]
    assert answered == ["[conv 1] ✓ answered", "[conv 0] ✓ answered"]


async def test_progress_board_follows_the_batch() -> None:
    board = ConversationBoard()
    prompts = [*sums(3), "What is 1 + 1? [fault=500]"]

    agent = await no_retry_agent()
    await run_settled(agent, prompts, progress=board)
    await agent.client.close()  # type: ignore[union-attr]
    assert board.counts().get("done") == 3 and board.counts().get("failed") == 1
    assert [row.turns for row in board.rows][:3] == [2, 2, 2]


async def test_progress_true_uses_tqdm_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    results = await run_concurrent(AGENT, sums(3), progress=True)
    assert len(results) == 3
    assert "3/3" in capsys.readouterr().err


async def test_empty_batch_gives_a_zero_report() -> None:
    for coro in (run_serial(AGENT, []), run_concurrent(AGENT, []), run_settled(AGENT, [])):
        results = await coro  # type: ignore[arg-type]
        assert list(results) == []
        r = results.report
        assert (r.n, r.sum_of_durations, r.longest_duration) == (0, 0.0, 0.0)
        # nothing ran: no speedup and no efficiency to speak of (0, not a division by a near-zero wall time)
        assert (r.speedup, r.efficiency) == (0.0, 0.0) and 0 <= r.wall_time < 1
        assert "conversations" in str(r)


async def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency must be"):  # a ValueError too
        await run_bounded(AGENT, sums(2), max_concurrency=0)
    with pytest.raises(ValueError, match="timeout must be"):
        await run_bounded(AGENT, sums(2), max_concurrency=2, timeout=0)
    with pytest.raises(ValueError, match="max_concurrency must be"):
        await run_bounded(AGENT, sums(2), max_concurrency=True)  # a bool is not a count


async def test_a_timeout_error_of_the_conversations_own_is_not_a_conversation_timeout() -> None:
    class OwnTimeout(Agent):
        async def run(self, prompt: Prompt, *, on_event: EventHandler | None = None) -> RunResult:
            raise TimeoutError("the database did not answer")

    agent = OwnTimeout(name="x", instructions="")
    [outcome] = await run_bounded(agent, ["hi"], max_concurrency=1, timeout=30)
    assert isinstance(outcome, Rejected)
    assert type(outcome.reason) is TimeoutError and str(outcome.reason) == "the database did not answer"
    [cut] = await run_bounded(AGENT, ["What is 1 + 1? [fault=hang]"], max_concurrency=1, timeout=0.2)
    assert isinstance(cut, Rejected) and isinstance(cut.reason, ConversationTimeout)
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        await run_settled(AGENT, ["What is 1 + 1?", 7])  # type: ignore[list-item]


async def test_report_text_and_html() -> None:
    results = await run_concurrent(AGENT, sums(2))
    text = str(results.report)
    assert "wall time" in text and "sum of durations" in text and "efficiency" in text
    html = results.report._repr_html_()
    assert "<table>" in html and "speedup" in html


async def test_every_runner_takes_a_timeout() -> None:
    """A hung conversation is cut at ``timeout`` by each runner: raised by the all-or-nothing ones, kept by the rest."""
    prompts = ["What is 1 + 1?", "What is 2 + 2? [fault=hang]"]
    for all_or_nothing in (run_serial, run_concurrent):
        with pytest.raises(ConversationTimeout, match="timeout=0.3 s"):
            await all_or_nothing(AGENT, prompts, timeout=0.3)
    settled = await run_settled(AGENT, prompts, timeout=0.3)
    bounded = await run_bounded(AGENT, prompts, max_concurrency=2, timeout=0.3)
    for outcomes in (settled, bounded):
        assert isinstance(outcomes[0], Fulfilled) and isinstance(outcomes[1], Rejected)
        assert isinstance(outcomes[1].reason, ConversationTimeout)
    finished = {index: outcome async for index, outcome in as_completed(AGENT, prompts, timeout=0.3)}
    assert isinstance(finished[0], Fulfilled) and isinstance(finished[1], Rejected)
    with pytest.raises(ConfigurationError, match="timeout must be"):
        await run_serial(AGENT, prompts, timeout=-1)
