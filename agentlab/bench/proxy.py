"""Section "proxy": what proxy mode adds to one request, with 100 requests in flight.

A stand-in for the real API (an offline server process whose model turns take ``TURN_SECONDS`` ± 20%, as a
quick turn of a real model does) is called directly and through the proxy
(``python -m agentlab serve --upstream URL``, its own process, as ``offline.start_process`` runs it). Every
request is the body an agent sends on its first turn (instructions, the math tools, a prompt); through the
proxy it is sent two ways:

- **plain**: no marker, so the proxy forwards the bytes as they are (the usual request of a real batch);
- **marker**: the prompt ends in ``[duration=0]``, so the proxy does its whole job: read the markers, remove
  them, forward, answer.

and, for a floor, through **bare**: a bare aiohttp forwarder (read the body, post it upstream, answer what came
back: no markers, no checks; ``serve_bare`` below, its own process too), what any aiohttp proxy costs on this
host. The stand-in receives the same bytes every way, and its latency is a hash of them: each request takes the
same time upstream whichever way it came.

Two loads, each run in alternating rounds, so that a change in the host's load hits every way alike:

- **in flight** (the target): 100 workers, each sending its next request when its answer arrives, as a batch
  of 100 agents keeps 100 requests in flight. Their starts are spread over ``SPREAD_SECONDS``, so requests
  arrive spread out, as they do in a running batch. The figure is what the proxy adds to a request (the target:
  at most 1 ms): the median, over every request, of its latency through the proxy less the latency of
  the same request direct (the same body, worker, turn and round), whose time upstream was the same.
- **burst**: 100 requests sent at the same instant. The proxy has one thread, so the median request queues
  behind about 50 others: its added latency is mostly that queue, not the cost of one request. The round's
  wall time over its 100 requests is what a burst pays per request.

And the proxy process's own CPU time per request under each load. Requests that arrive one by one cost an
aiohttp process about twice the CPU of requests that arrive together (each wake-up serves one request, not
many); the stand-in's own CPU per request grows the same way. The stand-in, the proxy (or the bare forwarder)
and this client share the host's cores, and a request through a forwarder wakes two more processes than a
request direct; on a busy host each wake-up waits for a core. The load average is printed with the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
from aiohttp import web

from agentlab.bench import target
from agentlab.offline import OfflineServer, start_process
from agentlab.tools.math import MATH_TOOLS

IN_FLIGHT = 100
TURN_SECONDS = 1.0  # one answer of the stand-in, before its ±20% jitter
SPREAD_SECONDS = 0.5  # the workers' first requests, spread over this
HEADERS = {"Authorization": "Bearer sk-bench-not-a-key", "Content-Type": "application/json"}
WAYS = ("direct", "bare", "plain", "marker")  # plain and marker go through the proxy
PROXIED = ("plain", "marker")
SESSION = web.AppKey("session", aiohttp.ClientSession)
Figures: TypeAlias = dict[str, dict[str, list[float]]]  # way → figure → values, in seconds


def agent_body(i: int, marker: str = "") -> bytes:
    """What an Agent (default settings) posts on its first turn; ``marker`` ends the prompt."""
    body = {
        "model": "gpt-5-mini",
        "instructions": "You are a careful math assistant. Use the tools.",
        "input": [{"role": "user", "content": f"What is {i} + 10?{marker}"}],
        "tools": [t.schema() for t in MATH_TOOLS],
    }
    return json.dumps(body).encode()


async def timed_post(session: aiohttp.ClientSession, url: str, body: bytes) -> float:
    """One request's latency, in seconds."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers=HEADERS) as answer:
        await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"the benchmark's request failed with {answer.status}")
    return time.perf_counter() - started


async def burst(session: aiohttp.ClientSession, url: str, bodies: list[bytes]) -> tuple[float, list[float]]:
    """Post every body at the same instant; return the round's wall time and each latency, in seconds."""
    started = time.perf_counter()
    latencies = await asyncio.gather(*(timed_post(session, url, body) for body in bodies))
    return time.perf_counter() - started, list(latencies)


async def in_flight(session: aiohttp.ClientSession, url: str, bodies: list[bytes], turns: int) -> list[float]:
    """``IN_FLIGHT`` workers, each posting ``turns`` requests one after another; every latency, in seconds."""

    async def worker(i: int) -> list[float]:
        await asyncio.sleep(i * SPREAD_SECONDS / IN_FLIGHT)
        return [await timed_post(session, url, bodies[i]) for _ in range(turns)]

    latencies = await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
    return [latency for one in latencies for latency in one]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 elsewhere): a figure load hardly moves."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(urls: dict[str, str], rounds: int, turns: int, proxy_pid: int | None) -> Figures:
    """Every way, in alternating rounds: the bursts, then 100 in flight; and the proxy's CPU during each."""
    bodies = {
        way: [agent_body(i, " [duration=0]" if way == "marker" else "") for i in range(IN_FLIGHT)] for way in WAYS
    }
    figures: Figures = {way: {"walls": [], "burst": [], "flight": []} for way in WAYS}
    figures["proxy_cpu"] = {"burst": [], "flight": []}  # seconds per request through the proxy
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for way in WAYS:  # 1. warm up: connections open, caches filled
            await burst(session, urls[way], bodies[way])
        cpu_before = cpu_seconds(proxy_pid)
        for _ in range(rounds):  # 2. bursts, each way in turn
            for way in WAYS:
                wall, latencies = await burst(session, urls[way], bodies[way])
                figures[way]["walls"].append(wall)
                figures[way]["burst"] += latencies
        cpu_between = cpu_seconds(proxy_pid)
        for _ in range(rounds):  # 3. 100 in flight, each way in turn
            for way in WAYS:
                figures[way]["flight"] += await in_flight(session, urls[way], bodies[way], turns)
        proxied = len(PROXIED) * IN_FLIGHT * rounds
        figures["proxy_cpu"]["burst"].append((cpu_between - cpu_before) / proxied)
        figures["proxy_cpu"]["flight"].append((cpu_seconds(proxy_pid) - cpu_between) / (proxied * turns))
    return figures


def run(quick: bool) -> dict[str, Any]:
    rounds, turns = (2, 3) if quick else (6, 6)
    stand_in: OfflineServer | None = None
    proxy: OfflineServer | None = None
    bare: subprocess.Popen[str] | None = None
    try:
        stand_in = start_process(base_latency=TURN_SECONDS, per_token=0.0)
        proxy = start_process(upstream=stand_in.base_url)
        bare, bare_url = start_bare(stand_in.base_url)
        urls = {"direct": stand_in.base_url, "bare": bare_url} | dict.fromkeys(PROXIED, proxy.base_url)
        urls = {way: url + "/responses" for way, url in urls.items()}
        figures = asyncio.run(measure(urls, rounds, turns, proxy.pid))
    finally:
        if bare is not None:
            bare.terminate()
            bare.communicate(timeout=10)
        for server in (proxy, stand_in):
            if server is not None:
                server.stop()
    return summarize(figures, rounds, turns, os.getloadavg()[0])


def start_bare(upstream: str) -> tuple[subprocess.Popen[str], str]:
    """``serve_bare`` in its own process; and its URL, the one line it prints when it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "agentlab.bench.proxy", upstream], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


async def serve_bare(upstream: str) -> None:
    """The bare forwarder: every POST /v1/responses read, posted to ``upstream``, its answer sent back."""

    async def forward(request: web.Request) -> web.Response:
        body, session = await request.read(), request.app[SESSION]
        async with session.post(upstream + "/responses", data=body, headers=HEADERS) as answer:
            return web.Response(status=answer.status, body=await answer.read(), content_type="application/json")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        app = web.Application()
        app[SESSION] = session
        app.router.add_post("/v1/responses", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
        await asyncio.Event().wait()  # until terminated


def median_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


def paired_added_ms(figures: Figures, way: str) -> float:
    """The median of what each request took through the proxy, less what the same request took direct."""
    pairs = zip(figures[way]["flight"], figures["direct"]["flight"], strict=True)
    return statistics.median(proxied - direct for proxied, direct in pairs) * 1000


def wall_added_ms(figures: Figures, way: str) -> float:
    """The median, over the rounds, of what a burst's wall time grows by per request through the proxy."""
    walls = zip(figures[way]["walls"], figures["direct"]["walls"], strict=True)
    return statistics.median((proxied - direct) / IN_FLIGHT * 1000 for proxied, direct in walls)


def summarize(figures: Figures, rounds: int, turns: int, load: float) -> dict[str, Any]:
    added = {way: paired_added_ms(figures, way) for way in WAYS[1:]}
    result: dict[str, Any] = {
        "in_flight": IN_FLIGHT,
        "rounds": rounds,
        "turns": turns,
        "median_ms": {way: median_ms(figures[way]["flight"]) for way in WAYS},
        "added_median_by_way_ms": added,
        "added_median_ms": added["marker"],
        "added_median_plain_ms": added["plain"],
        "added_median_bare_ms": added["bare"],
        "burst_median_ms": {way: median_ms(figures[way]["burst"]) for way in WAYS},
        "burst_wall_added_per_request_ms": {way: wall_added_ms(figures, way) for way in WAYS[1:]},
        "proxy_cpu_per_request_ms": {kind: values[0] * 1000 for kind, values in figures["proxy_cpu"].items()},
        "load_average": load,
    }
    result["lines"] = report_lines(result)
    result["targets"] = [
        target(f"proxy: median latency added per request at {IN_FLIGHT} in flight, {way} body, ms", added[way], "<=", 1)
        for way in PROXIED
    ]
    return result


def report_lines(result: dict[str, Any]) -> list[str]:
    flight, added, bursts = result["median_ms"], result["added_median_by_way_ms"], result["burst_median_ms"]
    walls, cpu = result["burst_wall_added_per_request_ms"], result["proxy_cpu_per_request_ms"]
    return [
        f"{IN_FLIGHT} requests in flight (each worker sends its next when its answer arrives), model turns of "
        f"{TURN_SECONDS:g} s ± 20%, {result['rounds']} rounds of {result['turns']} requests per worker each way:",
        *(
            f"  median latency {way:6s} {flight[way]:7.2f} ms"
            + (f"   added to a request (median of pairs) {added[way]:5.2f} ms" if way in added else "")
            for way in WAYS
        ),
        f"a burst: {IN_FLIGHT} requests sent at the same instant, {result['rounds']} rounds each way (the median "
        "request queues behind about half the others):",
        *(f"  median latency {way:6s} {bursts[way]:7.2f} ms" for way in WAYS),
        "  the round's wall time over its requests, added per request: "
        + "   ".join(f"{way} {walls[way]:.2f} ms" for way in walls),
        f"the proxy process's own CPU per request: {cpu['flight']:.2f} ms with {IN_FLIGHT} in flight, "
        f"{cpu['burst']:.2f} ms in a burst (fewer wake-ups per request)",
        f"host load average {result['load_average']:.2f} on {os.cpu_count()} cores",
    ]


if __name__ == "__main__":  # the bare forwarder's process: python -m agentlab.bench.proxy UPSTREAM
    asyncio.run(serve_bare(sys.argv[1]))
