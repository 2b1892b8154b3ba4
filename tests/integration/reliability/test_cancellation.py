"""Cancelling a batch of 200 conversations in flight, with each runner.

Within 1 s no task of ours is left; the server sees all 200 connections close (its handlers are cancelled, which
it counts as disconnects); and the next batch in the same loop, on the same client, works.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, cast

import pytest

from agentlab import Agent, as_completed, run_bounded, run_concurrent, run_settled
from agentlab.offline import LatencyModel, OfflineServer, ServerConfig

from .conftest import agent_for, close, other_tasks, stats_async

N = 200


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    # time scale 1: "[duration=60]" keeps every request busy for 30 s (two turns), far past the test
    return ServerConfig(LatencyModel(time_scale=1.0))


async def collect(agent: Agent, prompts: list[str]) -> list[Any]:
    stream = cast(AsyncGenerator[Any, None], as_completed(agent, prompts, max_concurrency=N))
    async with contextlib.aclosing(stream):
        return [pair async for pair in stream]


RUNNERS: dict[str, Callable[[Agent, list[str]], Coroutine[Any, Any, Any]]] = {
    "run_concurrent": run_concurrent,
    "run_settled": run_settled,
    "run_bounded": lambda agent, prompts: run_bounded(agent, prompts, max_concurrency=N, timeout=120),
    "as_completed": collect,
}


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not await check():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize("runner", RUNNERS)
async def test_cancel_a_batch_of_200_in_flight(server: OfflineServer, runner: str) -> None:
    agent = agent_for(server)
    before = (await stats_async(server))["disconnects"]
    batch = asyncio.create_task(RUNNERS[runner](agent, [f"What is {i} + 1? [duration=60]" for i in range(N)]))

    async def all_in_flight() -> bool:
        return bool((await stats_async(server))["in_flight"] >= N)

    assert await wait_until(all_in_flight, timeout=30), "the 200 requests never reached the server"
    cancelled_at = time.perf_counter()
    batch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await batch
    assert batch.cancelled()
    left_at_once = len(other_tasks())

    async def no_tasks_left() -> bool:
        return not other_tasks()

    await wait_until(no_tasks_left, timeout=1.0)
    settle = time.perf_counter() - cancelled_at
    left = len(other_tasks())

    async def all_gone() -> bool:
        stats = await stats_async(server)
        return bool(stats["disconnects"] - before >= N and stats["in_flight"] == 0)

    await wait_until(all_gone, timeout=5.0)
    seen_at = time.perf_counter() - cancelled_at
    stats = await stats_async(server)

    # The same loop and the same client go on working.
    again = await run_settled(agent, [f"What is {i} * 3?" for i in range(20)])
    assert [o.status for o in again] == ["fulfilled"] * 20
    assert [o.value.output_text for o in again] == [f"{i} * 3 = {3 * i}." for i in range(20)]  # type: ignore[union-attr]
    await close(agent)
    figures = {
        "left_at_once": left_at_once,
        "left": left,
        "settle": settle,
        "disconnects": stats["disconnects"] - before,
        "in_flight": stats["in_flight"],
        "seen_at": seen_at,
    }
    print(
        f"\n{runner}: cancelled {N} in flight; {figures['left_at_once']:.0f} tasks left at once, "
        f"{figures['left']:.0f} after {figures['settle']:.3f} s; the server saw {figures['disconnects']:.0f} "
        f"disconnects within {figures['seen_at']:.2f} s ({figures['in_flight']:.0f} still in flight); "
        "next batch of 20: all fulfilled"
    )
    assert figures["left"] == 0 and figures["settle"] < 1.0
    assert figures["disconnects"] == N and figures["in_flight"] == 0
