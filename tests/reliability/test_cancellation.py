"""Cancelling a batch of 200 in flight: no task left, the server sees the connections close, the loop goes on."""

from __future__ import annotations

import asyncio
import time

from agentlab import run_concurrent
from agentlab.offline import LatencyModel, ServerConfig, start

from .conftest import agent_for, close, other_tasks, server_stats


def test_cancel_a_batch_of_200_in_flight() -> None:
    with start(ServerConfig(LatencyModel(time_scale=1.0))) as server:

        async def main() -> tuple[float, int]:
            agent = agent_for(server)
            batch = asyncio.create_task(run_concurrent(agent, [f"What is {i} + 1? [duration=30]" for i in range(200)]))
            while server_stats(server)["in_flight"] < 200:  # noqa: ASYNC110 (polling the server's counters)
                await asyncio.sleep(0.05)
            cancelled_at = time.perf_counter()
            batch.cancel()
            try:
                await batch
            except asyncio.CancelledError:
                pass
            while other_tasks() and time.perf_counter() - cancelled_at < 1.0:  # noqa: ASYNC110 (measuring)
                await asyncio.sleep(0.01)
            pending = len(other_tasks())
            settle = time.perf_counter() - cancelled_at
            again = await run_concurrent(agent, ["What is 2 + 2? [duration=0.1]"] * 3)
            assert [r.output_text for r in again] == ["2 + 2 = 4."] * 3
            await close(agent)
            return settle, pending

        before = server_stats(server)["disconnects"]
        settle, pending = asyncio.run(main())
        deadline = time.perf_counter() + 5
        while server_stats(server)["disconnects"] - before < 200 and time.perf_counter() < deadline:
            time.sleep(0.05)
        seen = server_stats(server)["disconnects"] - before
    print(f"\ncancelled 200: {pending} tasks pending after {settle:.3f} s; server saw {seen} disconnects")
    assert pending == 0 and settle < 1.0
    assert seen == 200
