"""A model call that cannot reach a server: the error says which of "not running" and "too slow" it was."""

from __future__ import annotations

import socket

import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab import Agent, BackendError
from agentlab.tools.math import MATH_TOOLS


def make_agent(client: AsyncOpenAI) -> Agent:
    return Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)


async def test_refused_is_told_apart_from_slow() -> None:
    """Nothing listening is "refused" at once; a server that accepts but never answers is "did not answer"."""
    closed_port = free_port()  # bound and closed again: nothing listens there

    async def error_from(base_url: str, timeout: float) -> str:
        client = AsyncOpenAI(
            base_url=base_url, api_key="k", max_retries=0, timeout=timeout, http_client=DefaultAioHttpClient()
        )
        agent = make_agent(client=client)
        with pytest.raises(BackendError) as caught:
            await agent.run("What is 1 + 1?")
        await client.close()
        return str(caught.value)

    refused = await error_from(f"http://127.0.0.1:{closed_port}/v1", timeout=30)
    assert "connection refused" in refused and "is the model server running" in refused
    assert "did not answer in time" not in refused
    with socket.socket() as silent:  # listens, but never accepts or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = await error_from(f"http://127.0.0.1:{silent.getsockname()[1]}/v1", timeout=0.3)
    assert "did not answer in time" in slow and "refused" not in slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
