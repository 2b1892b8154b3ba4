"""Shared pieces of the reliability suite: dedicated offline servers, agents pointed at them, and counters.

Each module starts its own thread server with its own ``ServerConfig`` (time scale, fault rate, seed), so that
its figures do not depend on the process's default server or on the other modules.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab import Agent
from agentlab.offline import OfflineServer
from agentlab.tools import Tool
from agentlab.tools.math import MATH_TOOLS

OFFLINE_KEY = "offline"


def client_for(server: OfflineServer, *, max_retries: int = 2, timeout: float = 60.0) -> AsyncOpenAI:
    """A client of its own for ``server``, on openai's aiohttp transport. Make it inside the loop that uses it."""
    return AsyncOpenAI(
        base_url=server.base_url,
        api_key=OFFLINE_KEY,
        max_retries=max_retries,
        timeout=timeout,
        http_client=DefaultAioHttpClient(),
    )


def agent_for(
    server: OfflineServer,
    *,
    max_retries: int = 2,
    timeout: float = 60.0,
    tools: Sequence[Tool] = MATH_TOOLS,
    max_turns: int = 10,
    parallel_tool_calls: bool = False,
) -> Agent:
    """An Agent with its own client for ``server``. Close it with ``await close(agent)``."""
    return Agent(
        name="calc",
        instructions="Use the tools.",
        tools=tuple(tools),
        max_turns=max_turns,
        parallel_tool_calls=parallel_tool_calls,
        client=client_for(server, max_retries=max_retries, timeout=timeout),
    )


def server_stats(server: OfflineServer) -> dict[str, Any]:
    """The server's counters (GET /offline/stats): requests, in_flight, disconnects, statuses, faults."""
    with urllib.request.urlopen(server.url + "/offline/stats", timeout=5) as response:
        result: dict[str, Any] = json.load(response)
        return result


def wait_for_stats(
    server: OfflineServer, until: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """Poll the server's counters until ``until(stats)`` holds or ``timeout`` passes; return the last ones."""
    deadline = time.perf_counter() + timeout
    stats = server_stats(server)
    while not until(stats) and time.perf_counter() < deadline:
        time.sleep(0.02)
        stats = server_stats(server)
    return stats


async def stats_async(server: OfflineServer) -> dict[str, Any]:
    """``server_stats`` from inside a running loop, without blocking it."""
    return await asyncio.to_thread(server_stats, server)


async def close(agent: Agent) -> None:
    if agent.client is not None:
        await agent.client.close()


def other_tasks() -> set[asyncio.Task[Any]]:
    """The tasks of the running loop, other than the one that asks."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
