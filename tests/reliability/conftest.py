"""Shared pieces of the reliability suite: dedicated offline servers and agents pointed at them."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab import Agent
from agentlab.offline import OfflineServer
from agentlab.tools.math import MATH_TOOLS


def agent_for(server: OfflineServer, *, max_retries: int = 2, timeout: float = 60.0) -> Agent:
    """An Agent with its own client for ``server``. Make it inside the event loop that will use it."""
    client = AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=max_retries, timeout=timeout,
                         http_client=DefaultAioHttpClient())  # fmt: skip
    return Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)


def server_stats(server: OfflineServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/offline/stats", timeout=5) as response:
        result: dict[str, Any] = json.load(response)
        return result


async def close(agent: Agent) -> None:
    if agent.client is not None:
        await agent.client.close()


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]
