"""Section "streaming": N conversations streaming at once from one process, beside the same N not streamed.

    agentlab bench --section streaming            # N = 200
    agentlab bench --quick --section streaming    # N = 50
    agentlab bench --section streaming --n 500

The offline server runs in its own process with its default latency model (about 0.4-0.6 s per model turn)
at full speed. Each conversation asks for a sum: one turn with a tool call, one turn with the answer. The
streamed batch runs ``Agent(stream=True)``; its *time to first token* is the wait from the start of the
answer's model call to its first text delta. Without streaming the text comes all at once, so its first
token arrives when that call ends.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from agentlab import Agent, run_concurrent
from agentlab.bench import target
from agentlab.offline import start_process
from agentlab.records import AgentEvent
from agentlab.tools.math import MATH_TOOLS

__all__ = ["run"]

N, QUICK_N = 200, 50


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    """The streamed and the plain batch at each N, and the targets."""
    sizes = sizes or [QUICK_N if quick else N]
    server = start_process(time_scale=1.0, seed=0)
    os.environ["AGENTLAB_OFFLINE_URL"] = server.base_url  # agentlab's default client talks to this server
    load = os.getloadavg()[0]
    try:
        results = [asyncio.run(measure(n, stream)) for n in sizes for stream in (False, True)]
        raw = [asyncio.run(raw_streams(server.base_url, n)) for n in sizes]
    finally:
        server.stop()
    lines = [f"load average before: {load:.1f} (on {os.cpu_count()} CPUs): a busy machine delays every figure"]
    lines += [describe(r) for r in results]
    lines += [
        f"  raw SSE reader, N={r['n']}: first delta {r['first_median']:.3f} s of a {r['total_median']:.3f} s "
        "stream (median; aiohttp, no openai client, no agent)"
        for r in raw
    ]
    biggest = [r for r in results if r["n"] == max(sizes)]
    plain, streamed = biggest
    targets = [
        target("streamed conversations that completed", streamed["completed"], ">=", streamed["n"]),
        target("median time to first token / answer turn, streamed", streamed["ttft_share"], "<=", 0.8),
        target("wall time streamed / not streamed", streamed["wall"] / plain["wall"], "<=", 1.5),
    ]
    return {"sizes": sizes, "load_average": load, "results": results, "raw": raw, "lines": lines, "targets": targets}


async def raw_streams(base_url: str, n: int) -> dict[str, Any]:
    """``n`` one-turn streams read with a bare aiohttp client: the server's pacing without any client cost."""
    import aiohttp  # the server's own dependency; only this figure needs it on the client side

    async def one(session: aiohttp.ClientSession, i: int) -> tuple[float, float]:
        body = {"model": "gpt-5-mini", "input": "Hello there, who are you?", "stream": True, "metadata": {"n": str(i)}}
        started, first = time.perf_counter(), 0.0
        async with session.post(base_url + "/responses", json=body) as answer:
            async for line in answer.content:
                if not first and line.startswith(b"event: response.output_text.delta"):
                    first = time.perf_counter() - started
        return first, time.perf_counter() - started

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await one(session, -1)
        timings = await asyncio.gather(*(one(session, i) for i in range(n)))
    firsts, totals = [f for f, _ in timings], [t for _, t in timings]
    return {"n": n, "first_median": statistics.median(firsts), "total_median": statistics.median(totals)}


async def measure(n: int, stream: bool) -> dict[str, Any]:
    """One batch of ``n`` conversations; the times of each one's answer turn come from its events."""
    agent = Agent("calc", "Use the tools.", tools=MATH_TOOLS, stream=stream)
    await run_concurrent(agent, ["What is 1 + 2?"])  # warm-up: imports, the connection pool, first calls
    turn_start: dict[int, float] = {}
    first_text: dict[int, float] = {}
    answer_turn: dict[int, float] = {}

    def watch(index: int, event: AgentEvent) -> None:
        if event.kind == "model_start":
            turn_start[index] = event.time
        elif event.kind == "text_delta" and index not in first_text:
            first_text[index] = event.time - turn_start[index]
        elif event.kind == "model_end" and event.detail == "answer":
            answer_turn[index] = event.time - turn_start[index]
            first_text.setdefault(index, answer_turn[index])  # not streamed: all the text at the end

    cpu, started = time.process_time(), time.perf_counter()
    outcomes = await run_concurrent(agent, [f"What is {i} + {i + 1}?" for i in range(n)], on_event=watch)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    right = sum(str(2 * i + 1) in result.output_text for i, result in enumerate(outcomes))
    durations = [result.duration for result in outcomes]
    answered = sorted(answer_turn)
    ttft, turns = [first_text[i] for i in answered], [answer_turn[i] for i in answered]
    return {
        "mode": "streamed" if stream else "not streamed",
        "n": n,
        "completed": right,
        "wall": wall,
        "cpu_ms_per_conversation": 1000 * cpu / n,
        "ttft_median": statistics.median(ttft),
        "ttft_p95": percentile(ttft, 0.95),
        "answer_turn_median": statistics.median(turns),
        "ttft_share": statistics.median(t / a for t, a in zip(ttft, turns, strict=True)),
        "conversation_median": statistics.median(durations),
        "conversation_p95": percentile(durations, 0.95),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe(r: dict[str, Any]) -> str:
    return (
        f"{r['mode']:>12}, N={r['n']}: {r['completed']}/{r['n']} right, wall {r['wall']:.2f} s, "
        f"first token {r['ttft_median']:.3f} s (p95 {r['ttft_p95']:.3f}) of an answer turn of "
        f"{r['answer_turn_median']:.3f} s, conversation {r['conversation_median']:.2f} s "
        f"(p95 {r['conversation_p95']:.2f}), CPU {r['cpu_ms_per_conversation']:.1f} ms/conversation"
    )
