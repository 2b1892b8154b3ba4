"""Run ONE contender of the benchmark in this process and print its figures as one JSON line.

    python -m agentlab.bench.contender NAME N BASE_URL

Each contender runs in a fresh process so that its CPU time and memory are its own. Imports, clients and a
one-conversation warm-up happen before the clock starts; the clock times the batch alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Timed = tuple[float, float, str]  # start, end, answer of one conversation
Batch = Callable[[list[str]], Awaitable[list[Timed]]]


def prompts(n: int) -> list[str]:
    return [f"What is {i} + {i + 1}?" for i in range(n)]


async def timed(conversation: Awaitable[str]) -> Timed:
    start = time.perf_counter()
    answer = await conversation
    return start, time.perf_counter(), answer


Contender = tuple[Batch, Callable[[], Awaitable[None]]]  # its batch function and its clean-up


async def make_contender(name: str, base_url: str) -> Contender:
    """Set up one contender (imports included, before any clock starts)."""
    if name in ("agentlab_default", "agentlab_same_client", "agentlab_serial"):
        return make_agentlab(name, base_url)
    if name in ("raw_httpx", "raw_aiohttp"):
        return make_raw_loop(name, base_url)
    if name == "agents_sdk":
        return make_agents_sdk(base_url)
    raise SystemExit(f"unknown contender {name!r}")


def make_agentlab(name: str, base_url: str) -> Contender:
    """agentlab, with its default client (1), a plain ``AsyncOpenAI()`` (2), or ``run_serial`` (6)."""
    from openai import AsyncOpenAI

    from agentlab import Agent, run_concurrent, run_serial
    from agentlab.tools.math import MATH_TOOLS

    os.environ["AGENTLAB_OFFLINE_URL"] = base_url
    client = None if name == "agentlab_default" else AsyncOpenAI(base_url=base_url, api_key="offline")
    agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
    runner = run_serial if name == "agentlab_serial" else run_concurrent

    async def agentlab_batch(batch: list[str]) -> list[Timed]:
        results = await runner(agent, batch)
        return [(r.started_at, r.ended_at, r.output_text) for r in results]

    async def agentlab_close() -> None:
        if client is not None:
            await client.close()

    return agentlab_batch, agentlab_close


def make_raw_loop(name: str, base_url: str) -> Contender:
    """The hand-written loop of ``raw_loop.py``, on httpx (3, the baseline) or aiohttp (4)."""
    from openai import AsyncOpenAI, DefaultAioHttpClient

    from agentlab.bench.raw_loop import raw_conversation

    http_client = DefaultAioHttpClient() if name == "raw_aiohttp" else None
    raw_client = AsyncOpenAI(base_url=base_url, api_key="offline", http_client=http_client)

    async def raw_batch(batch: list[str]) -> list[Timed]:
        return await asyncio.gather(*(timed(raw_conversation(raw_client, p)) for p in batch))

    return raw_batch, raw_client.close


def make_agents_sdk(base_url: str) -> Contender:
    """The OpenAI Agents SDK (5), with the same one tool."""
    from agents import Agent as SDKAgent
    from agents import OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    sdk_client = AsyncOpenAI(base_url=base_url, api_key="offline")

    @function_tool
    def sum_numbers(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    sdk_agent = SDKAgent(
        name="calc",
        instructions="Use the tools.",
        tools=[sum_numbers],
        model=OpenAIResponsesModel("gpt-5-mini", openai_client=sdk_client),
    )

    async def run_one(prompt: str) -> str:
        return str((await Runner.run(sdk_agent, prompt)).final_output)

    async def sdk_batch(batch: list[str]) -> list[Timed]:
        return await asyncio.gather(*(timed(run_one(p)) for p in batch))

    return sdk_batch, sdk_client.close


async def measure(name: str, n: int, base_url: str) -> dict[str, Any]:
    batch, close = await make_contender(name, base_url)
    await batch(prompts(1))  # warm-up: imports, connection pool, first-call costs
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = time.process_time()
    started = time.perf_counter()
    timings = await batch(prompts(n))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    await close()
    durations = [end - start for start, end, _ in timings]
    wrong = [i for i, (_, _, answer) in enumerate(timings) if f"{2 * i + 1}" not in answer]
    return {
        "contender": name,
        "n": n,
        "wall": wall,
        "sum": sum(durations),
        "longest": max(durations),
        "efficiency": max(durations) / wall,
        "cpu_s": cpu,
        "cpu_ms_per_call": 1000 * cpu / (2 * n),
        "rss_kb_per_conversation": rss_growth_kb / n,
        "wrong_answers": len(wrong),
    }


if __name__ == "__main__":
    contender, count, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(measure(contender, count, url))))
