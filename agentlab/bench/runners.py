"""Section "runners": agentlab against a raw openai loop and the OpenAI Agents SDK, on the same offline server.

    agentlab bench --section runners           # N in 1, 10, 100, 1000 (a few minutes)
    agentlab bench --quick --section runners   # N in 1, 10, 100 (under a minute)
    agentlab bench --section runners --n 10

The offline server runs in its own process (2 model turns per conversation, 0.2 s each, no jitter). Each
(contender, N) runs in a fresh process (``python -m agentlab.bench.runners NAME N BASE_URL``), so that its CPU
time and memory are its own; imports, clients and a one-conversation warm-up happen before its clock starts.

Like with like: every contender offers the model the same one tool (``sum_numbers``, one schema), runs one
turn's calls one after another, and leaves ``parallel_tool_calls`` unsent (the API's default, and agentlab's
``Agent`` default). The warm-up records what each one really sent (``sent``), and a target checks that every
contender sent the same. ``figures`` draws the wall times at the largest N; ``python
benchmarks/readme_table.py`` puts the table in the README.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab.bench import target
from agentlab.offline import start_process
from agentlab.tools.math import sum_numbers

CONTENDERS = ["agentlab_default", "agentlab_same_client", "raw_httpx", "raw_aiohttp", "agents_sdk", "agentlab_serial"]
LABELS = {
    "agentlab_default": "(1) agentlab, default client",
    "agentlab_same_client": "(2) agentlab, plain AsyncOpenAI()",
    "raw_httpx": "(3) raw loop, httpx (baseline)",
    "raw_aiohttp": "(4) raw loop, aiohttp",
    "agents_sdk": "(5) OpenAI Agents SDK",
    "agentlab_serial": "(6) agentlab run_serial",
}
TURN_SECONDS = 0.2
HEAP_N = 100  # conversations in flight when tracemalloc measures the heap (see traced_kb_per_conversation)
TOOLS = [sum_numbers.schema()]  # what every contender offers the model

Timed = tuple[float, float, str]  # start, end, answer of one conversation
Contender = tuple[Callable[[list[str]], Awaitable[list[Timed]]], AsyncOpenAI]  # its batch, and its client


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    """Every contender at every N, the server's own throughput, and the targets."""
    sizes = sizes or ([1, 10, 100] if quick else [1, 10, 100, 1000])
    lines: list[str] = []
    contenders = list(CONTENDERS)
    if importlib.util.find_spec("agents") is None:
        lines.append("skipping the Agents SDK contender: `agents` is not installed (pip install 'agentlab[bench]')")
        contenders.remove("agents_sdk")
        print(lines[-1], flush=True)
    results = run_contenders(contenders, sizes, lines)
    fast = start_process(time_scale=1.0, base_latency=0.0, per_token=0.0, jitter=0.0)
    try:
        rps = asyncio.run(server_throughput(fast.base_url))
    finally:
        fast.stop()
    lines.append(f"offline server alone: {rps:,.0f} requests/s")
    return {
        "turn_seconds": TURN_SECONDS,
        "sizes": sizes,
        "results": results,
        "server_requests_per_second": rps,
        "lines": lines,
        "targets": targets(results, rps, max(sizes)),
    }


def run_contenders(contenders: list[str], sizes: list[int], lines: list[str]) -> list[dict[str, Any]]:
    """Each (contender, N) in a fresh process, against one offline server in another."""
    results: list[dict[str, Any]] = []
    server = start_process(time_scale=1.0, seed=0, base_latency=TURN_SECONDS, per_token=0.0, jitter=0.0)
    try:
        for n in sizes:
            for name in contenders:
                if name == "agentlab_serial" and n > 10:
                    continue
                results.append(run_contender(name, n, server.base_url))
                lines.append(table_line(results[-1]))
                print(lines[-1], flush=True)  # as it goes: a full run takes minutes
    finally:
        server.stop()
    sent = {json.dumps(r["sent"]) for r in results}
    lines.append(f"every contender sent: {' | '.join(sorted(sent))}")
    return results


def run_contender(name: str, n: int, base_url: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab.bench.runners", name, str(n), base_url],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} at N={n} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def table_line(r: dict[str, Any]) -> str:
    """One table line for one (contender, N)."""
    return (
        f"N={r['n']:>5}  {LABELS[r['contender']]:<36} wall {r['wall']:7.2f} s  longest {r['longest']:5.2f} s  "
        f"eff {r['efficiency']:4.0%}  CPU {r['cpu_ms_per_call']:5.2f} ms/call  "
        f"RSS {r['rss_kb_per_conversation']:6.1f} KB/conv  heap {r['heap_kb_per_conversation']:5.1f} KB/conv  "
        f"wrong {r['wrong_answers']}"
    )


def targets(results: list[dict[str, Any]], rps: float, big: int) -> list[dict[str, Any]]:
    """The targets of the issues: ratios of wall times at N=1000, the latency floor, CPU, memory, throughput."""
    at = {(r["contender"], r["n"]): r for r in results}
    mid = 100 if ("agentlab_default", 100) in at else max(n for c, n in at if c == "agentlab_default")
    checks: list[dict[str, Any]] = []
    pairs = [
        ("agentlab_default", "raw_httpx", 0.60),
        ("agentlab_default", "raw_aiohttp", 1.05),
        ("agentlab_same_client", "raw_httpx", 1.10),
        ("agentlab_same_client", "agents_sdk", 0.60),
    ]
    for a, b, limit in pairs:
        if big >= 1000 and (a, big) in at and (b, big) in at:
            ratio = at[(a, big)]["wall"] / at[(b, big)]["wall"]
            checks.append(target(f"wall {LABELS[a][:3]} / {LABELS[b][:3]} at N={big}", ratio, "<=", limit))
    default = [r for r in results if r["contender"] == "agentlab_default"]
    floor = at[("agentlab_default", mid)]["wall"] / (2 * TURN_SECONDS)
    measured = [r for r in default if r["n"] >= 10] or default  # N=1 is mostly start-up; a tiny run has only it
    memory = at[("agentlab_default", big)]["rss_kb_per_conversation"]
    unlike = sum(r["sent"] != default[0]["sent"] for r in results)
    return [
        *checks,
        target(f"wall / latency floor at N={mid}, (1)", floor, "<=", 2.0),
        target("client CPU per model call, (1), ms", max(r["cpu_ms_per_call"] for r in measured), "<=", 3.0),
        target(f"memory per in-flight conversation at N={big}, (1), KB", memory, "<=", 50.0),
        target("offline server throughput, requests/s", rps, ">=", 1000.0),
        target("contenders that sent other turns than (1) (tools, parallel_tool_calls, requests)", unlike, "<=", 0),
    ]


async def server_throughput(base_url: str, requests: int = 4000, concurrency: int = 200) -> float:
    """Requests per second that the offline server answers, with a lean aiohttp client and zero latency."""
    body = json.dumps({"model": "gpt-5-mini", "input": "What is 1 + 2?", "tools": TOOLS}).encode()
    queue = iter(range(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in queue:
                async with session.post(
                    base_url + "/responses", data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


def figures(result: dict[str, Any], out: Path) -> list[Path]:
    """A bar chart of the wall times at the largest N, as ``results.png``."""
    from agentlab.charts import bars, save_png  # matplotlib: only when a chart is drawn

    big = max(result["sizes"])
    at_big = [r for r in result["results"] if r["n"] == big]
    figure = bars(
        [LABELS[r["contender"]].replace(", ", "\n") for r in at_big],
        [r["wall"] for r in at_big],
        title=f"Wall time for N={big} conversations (2 model turns of {TURN_SECONDS} s each)",
    )
    path = out / "results.png"
    save_png(figure, path)
    return [path]


# -- One contender, in its own process ------------------------------------------------------------------------


async def raw_conversation(client: AsyncOpenAI, prompt: str) -> str:
    """THE BASELINE: a minimal hand-written Responses API tool loop, as most people write it, with no handicap.

    No framework: ``client.responses.create``, run the function calls one after another, send the outputs back.
    """
    items: list[Any] = [{"role": "user", "content": prompt}]
    for _ in range(10):
        response = await client.responses.create(model="gpt-5-mini", input=items, tools=TOOLS)  # type: ignore[arg-type]
        items += response.output
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return response.output_text
        for call in calls:
            arguments = json.loads(call.arguments)
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": str(add(**arguments))})
    raise RuntimeError("no answer after 10 turns")


def add(a: float, b: float) -> float:
    return a + b


async def timed(conversation: Awaitable[str]) -> Timed:
    start = time.perf_counter()
    answer = await conversation
    return start, time.perf_counter(), answer


def make_contender(name: str, base_url: str) -> Contender:
    """Set up one contender (imports included, before any clock starts)."""
    if name.startswith("agentlab"):
        from agentlab import Agent, default_client, run_concurrent, run_serial

        os.environ["AGENTLAB_OFFLINE_URL"] = base_url
        client = default_client() if name == "agentlab_default" else AsyncOpenAI(base_url=base_url, api_key="k")
        agent = Agent(name="calc", instructions="Use the tools.", tools=(sum_numbers,), client=client)
        runner = run_serial if name == "agentlab_serial" else run_concurrent

        async def agentlab_batch(batch: list[str]) -> list[Timed]:
            return [(r.started_at, r.ended_at, r.output_text) for r in await runner(agent, batch)]

        return agentlab_batch, client
    if name in ("raw_httpx", "raw_aiohttp"):
        http = DefaultAioHttpClient() if name == "raw_aiohttp" else None
        raw_client = AsyncOpenAI(base_url=base_url, api_key="k", http_client=http)
        return lambda batch: asyncio.gather(*(timed(raw_conversation(raw_client, p)) for p in batch)), raw_client
    if name == "agents_sdk":
        return make_agents_sdk(base_url)
    raise SystemExit(f"unknown contender {name!r}")


def make_agents_sdk(base_url: str) -> Contender:
    """The OpenAI Agents SDK, with the same one tool."""
    from agents import Agent as SDKAgent
    from agents import OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    sdk_client = AsyncOpenAI(base_url=base_url, api_key="k")

    @function_tool
    def sum_numbers(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    model = OpenAIResponsesModel("gpt-5-mini", openai_client=sdk_client)
    sdk_agent = SDKAgent(name="calc", instructions="Use the tools.", tools=[sum_numbers], model=model)

    async def run_one(prompt: str) -> str:
        return str((await Runner.run(sdk_agent, prompt)).final_output)

    return lambda batch: asyncio.gather(*(timed(run_one(p)) for p in batch)), sdk_client


def watch_requests(client: AsyncOpenAI) -> Callable[[], list[dict[str, Any]]]:
    """Keep each request body the client posts, until the returned function is called: it returns them.

    Every resource of the openai client posts through ``client.post``, bound when the resource is first used,
    so the watcher stays in place after it stops keeping bodies: one more await per request, for every contender.
    """
    bodies: list[dict[str, Any]] | None = []
    post = client.post

    async def watched_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if bodies is not None:  # the body, with what came in extra_body (as agentlab sends input and tools)
            bodies.append({**(kwargs.get("body") or {}), **((kwargs.get("options") or {}).get("extra_json") or {})})
        return await post(path, *args, **kwargs)

    def stop() -> list[dict[str, Any]]:
        nonlocal bodies
        seen, bodies = bodies or [], None
        return seen

    client.post = watched_post  # type: ignore[method-assign]
    return stop


async def measure(name: str, n: int, base_url: str) -> dict[str, Any]:
    batch, client = make_contender(name, base_url)
    stop_watching = watch_requests(client)  # the warm-up's requests: what this contender sends
    await batch(["What is 0 + 1?"])  # warm-up: imports, connection pool, first-call costs
    bodies = stop_watching()
    first = bodies[0]
    sent = {
        "tools": [t.get("name") for t in first.get("tools") or []],
        "parallel_tool_calls": first.get("parallel_tool_calls", "not sent"),
        "requests per conversation": len(bodies),
    }
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before, started = time.process_time(), time.perf_counter()
    timings = await batch([f"What is {i} + {i + 1}?" for i in range(n)])
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    heap_kb = await traced_kb_per_conversation(batch, n)
    await client.close()
    durations = [end - start for start, end, _ in timings]
    return {
        "contender": name,
        "n": n,
        "sent": sent,
        "wall": wall,
        "sum": sum(durations),
        "longest": max(durations),
        "efficiency": max(durations) / wall,
        "cpu_s": cpu,
        "cpu_ms_per_call": 1000 * cpu / (2 * n),
        "rss_kb_per_conversation": rss_growth_kb / n,
        "heap_kb_per_conversation": heap_kb,
        "wrong_answers": sum(f"{2 * i + 1}" not in answer for i, (_, _, answer) in enumerate(timings)),
    }


async def traced_kb_per_conversation(batch: Callable[[list[str]], Awaitable[list[Timed]]], n: int) -> float:
    """Python's own memory at the peak of a second batch, per conversation, as ``tracemalloc`` counts it.

    Why beside the RSS figure: the growth of the peak RSS also counts the allocator's arenas and what the
    warm-up left, and it moved by 25-30 KB per conversation with how the process was started. tracemalloc
    counts only the blocks that Python objects hold while the conversations are in flight. It runs after the
    timed batch, because tracing slows every allocation: so much that 1000 raw httpx conversations at once
    time out connecting, so the batch holds at most ``HEAP_N`` (the figure barely moves past 100: 49 and 48 KB
    for (1) at 100 and 1000).
    """
    n = min(n, HEAP_N)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await batch([f"What is {i} + {i + 2}?" for i in range(n)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / 1024 / n


if __name__ == "__main__":  # one contender: python -m agentlab.bench.runners NAME N BASE_URL
    print(json.dumps(asyncio.run(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3]))))
