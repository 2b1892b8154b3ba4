"""Section "runners": agentlab against a raw openai loop and the OpenAI Agents SDK, on the same offline server.

    agentlab bench --section runners           # N in 1, 10, 100, 1000 (a few minutes)
    agentlab bench --quick --section runners   # N in 1, 10, 100 (under a minute)
    agentlab bench --section runners --n 10

The offline server runs in its own process (2 model turns per conversation, 0.2 s each, no jitter). Each
(contender, N) runs in a fresh client process (``python -m agentlab.bench.contender``), so CPU time and memory
are its own. ``figures`` draws the wall times at the largest N; ``python benchmarks/readme_table.py`` puts the
table in the README.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from agentlab.offline import start_process

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


def run_contender(name: str, n: int, base_url: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab.bench.contender", name, str(n), base_url],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} at N={n} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def server_throughput(base_url: str, requests: int = 4000, concurrency: int = 200) -> float:
    """Requests per second that the offline server answers, with a lean aiohttp client and zero latency."""
    numbers = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
    tools = [{"type": "function", "name": "sum_numbers", "parameters": numbers}]
    body = json.dumps({"model": "gpt-5-mini", "input": "What is 1 + 2?", "tools": tools}).encode()
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


def targets(results: list[dict[str, Any]], rps: float, big: int) -> list[tuple[str, float, str, float, bool]]:
    """(figure, value, comparison, target, passed) for each target of the issue."""
    at = {(r["contender"], r["n"]): r for r in results}
    mid = 100 if (("agentlab_default", 100) in at) else max(n for c, n in at if c == "agentlab_default")
    checks: list[tuple[str, float, str, float]] = []

    def ratio(a: str, b: str) -> float | None:
        if (a, big) in at and (b, big) in at:
            return float(at[(a, big)]["wall"] / at[(b, big)]["wall"])
        return None

    pairs = [
        ("agentlab_default", "raw_httpx", 0.60),
        ("agentlab_default", "raw_aiohttp", 1.05),
        ("agentlab_same_client", "raw_httpx", 1.10),
        ("agentlab_same_client", "agents_sdk", 0.60),
    ]
    for a, b, limit in pairs:
        value = ratio(a, b) if big >= 1000 else None
        if value is not None:
            checks.append((f"wall {LABELS[a][:3]} / {LABELS[b][:3]} at N={big}", value, "<=", limit))
    default = [r for r in results if r["contender"] == "agentlab_default"]
    checks.append(
        (f"wall / latency floor at N={mid}, (1)", at[("agentlab_default", mid)]["wall"] / (2 * TURN_SECONDS), "<=", 2.0)
    )
    measured = [r for r in default if r["n"] >= 10] or default  # N=1 is mostly start-up; a tiny run has only it
    checks.append(("client CPU per model call, (1), ms", max(r["cpu_ms_per_call"] for r in measured), "<=", 3.0))
    checks.append(
        (
            f"memory per in-flight conversation at N={big}, (1), KB",
            at[("agentlab_default", big)]["rss_kb_per_conversation"],
            "<=",
            50.0,
        )
    )
    checks.append(("offline server throughput, requests/s", rps, ">=", 1000.0))
    return [(name, v, op, limit, v <= limit if op == "<=" else v >= limit) for name, v, op, limit in checks]


def table_line(r: dict[str, Any]) -> str:
    """One table line for one (contender, N)."""
    return (
        f"N={r['n']:>5}  {LABELS[r['contender']]:<36} wall {r['wall']:7.2f} s  longest {r['longest']:5.2f} s  "
        f"eff {r['efficiency']:4.0%}  CPU {r['cpu_ms_per_call']:5.2f} ms/call  "
        f"RSS {r['rss_kb_per_conversation']:6.1f} KB/conv  wrong {r['wrong_answers']}"
    )


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
    checks = targets(results, rps, max(sizes))
    return {
        "turn_seconds": TURN_SECONDS,
        "sizes": sizes,
        "results": results,
        "server_requests_per_second": rps,
        "lines": lines,
        "targets": [{"figure": name, "value": v, "target": f"{op} {t:g}", "pass": p} for name, v, op, t, p in checks],
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
    return results


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
