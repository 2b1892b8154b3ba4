"""Section "proxy": what proxy mode adds to one request, with 100 requests in flight at once.

A stand-in for the real API (an offline server process, no jitter, so every answer takes the same time) is
called two ways, in alternating rounds of 100 concurrent requests, each with the body an agent sends (its
instructions, the math tools, a prompt with a ``[duration=0]`` marker, so the proxy does its whole job: read
the markers, remove them, forward, answer):

- **direct**: the client posts to the stand-in;
- **proxy**: the client posts to the proxy (``python -m agentlab serve --upstream URL``, its own process, as
  ``offline.start_process`` runs it), which forwards to the same stand-in.

Figures: the median latency of one request each way, and what the proxy adds to it (the target: at most
1 ms); the round's wall time over its 100 requests, which is what a batch of 100 pays per request; and the
proxy process's own CPU time per request, which the host's load hardly moves. On a busy 2-core machine three
processes share two cores, and 100 requests that arrive at once queue for the proxy's one thread, so the two
latency figures move with the host's load.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from agentlab.offline import OfflineServer, start_process
from agentlab.tools.math import MATH_TOOLS

IN_FLIGHT = 100
TARGET_MS = 1.0
HEADERS = {"Authorization": "Bearer sk-bench-not-a-key", "Content-Type": "application/json"}


def agent_body(i: int) -> bytes:
    """What an Agent posts on its first turn."""
    body = {
        "model": "gpt-5-mini",
        "instructions": "You are a careful math assistant. Use the tools.",
        "parallel_tool_calls": True,
        "input": [{"role": "user", "content": f"What is {i} + 10? [duration=0]"}],
        "tools": [t.schema() for t in MATH_TOOLS],
    }
    return json.dumps(body).encode()


async def one_round(session: aiohttp.ClientSession, url: str, bodies: list[bytes]) -> tuple[float, list[float]]:
    """Post every body at once; return the round's wall time and each request's latency, in seconds."""

    async def post(body: bytes) -> float:
        started = time.perf_counter()
        async with session.post(url, data=body, headers=HEADERS) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"the benchmark's request failed with {answer.status}")
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await asyncio.gather(*(post(body) for body in bodies))
    return time.perf_counter() - started, list(latencies)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 elsewhere): a figure load hardly moves."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(direct: str, proxied: str, rounds: int) -> dict[str, dict[str, list[float]]]:
    bodies = [agent_body(i) for i in range(IN_FLIGHT)]
    figures: dict[str, dict[str, list[float]]] = {name: {"walls": [], "latencies": []} for name in ("direct", "proxy")}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in (direct, proxied):  # warm up: connections open, caches filled
            await one_round(session, url, bodies)
        for _ in range(rounds):  # alternate, so that a change in the host's load hits both alike
            for name, url in (("direct", direct), ("proxy", proxied)):
                wall, latencies = await one_round(session, url, bodies)
                figures[name]["walls"].append(wall)
                figures[name]["latencies"] += latencies
    return figures


def run(quick: bool) -> dict[str, Any]:
    rounds = 10 if quick else 40
    stand_in: OfflineServer | None = None
    proxy: OfflineServer | None = None
    try:
        stand_in = start_process(time_scale=0.05, jitter=0.0)
        proxy = start_process(time_scale=0.05, upstream=stand_in.base_url)
        cpu_before = cpu_seconds(proxy.pid)
        figures = asyncio.run(measure(stand_in.base_url + "/responses", proxy.base_url + "/responses", rounds))
        figures["proxy"]["cpu"] = [cpu_seconds(proxy.pid) - cpu_before]
    finally:
        for server in (proxy, stand_in):
            if server is not None:
                server.stop()
    return summarize(figures, rounds)


def summarize(figures: dict[str, dict[str, list[float]]], rounds: int) -> dict[str, Any]:
    direct_ms = statistics.median(figures["direct"]["latencies"]) * 1000
    proxy_ms = statistics.median(figures["proxy"]["latencies"]) * 1000
    added_ms = proxy_ms - direct_ms
    walls = zip(figures["proxy"]["walls"], figures["direct"]["walls"], strict=True)
    per_request = [(p - d) / IN_FLIGHT * 1000 for p, d in walls]
    batch_added_ms = statistics.median(per_request)
    cpu_ms = figures["proxy"]["cpu"][0] / ((rounds + 1) * IN_FLIGHT) * 1000  # the warm-up round included
    return {
        "in_flight": IN_FLIGHT,
        "rounds": rounds,
        "direct_median_ms": direct_ms,
        "proxy_median_ms": proxy_ms,
        "added_median_ms": added_ms,
        "batch_added_per_request_ms": batch_added_ms,
        "proxy_cpu_per_request_ms": cpu_ms,
        "lines": [
            f"{IN_FLIGHT} requests in flight, {rounds} rounds each way, alternating:",
            f"  median latency direct {direct_ms:7.2f} ms   through the proxy {proxy_ms:7.2f} ms"
            f"   added {added_ms:6.2f} ms",
            f"  a round's wall time over its {IN_FLIGHT} requests: the proxy adds {batch_added_ms:.2f} ms per request",
            f"  the proxy process's own CPU: {cpu_ms:.2f} ms per request",
        ],
        "targets": [
            {
                "figure": f"proxy: median latency added per request at {IN_FLIGHT} in flight, ms",
                "value": added_ms,
                "target": f"<= {TARGET_MS:g}",
                "pass": added_ms <= TARGET_MS,
            },
            {
                "figure": f"proxy: batch wall time added per request at {IN_FLIGHT} in flight, ms",
                "value": batch_added_ms,
                "target": f"<= {TARGET_MS:g}",
                "pass": batch_added_ms <= TARGET_MS,
            },
        ],
    }
