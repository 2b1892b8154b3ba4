"""Section "cluster": N one-call conversations over 4 Dask worker processes against ``serve --rpm R --tpm T``.

    agentlab bench --section cluster            # N = 2000
    agentlab bench --quick --section cluster    # N = 200

The server runs in its own process at a time scale of 0.01 (a "minute" of 0.6 s; each call takes 0.3 s), as in
section "budgets", whose server drain, counters and steady-state share this section reuses. Three contenders,
one after another, each after another job has spent the server's minute:

- ``per_worker``: ``run_distributed(..., budget=Budget(R, T))``: the Budget is copied to each of the 4 workers,
  each spends the whole limit (how LiteLLM's router, Celery's ``rate_limit`` and Ray Data's ``qps`` behave);
- ``shared``: ``run_distributed(..., budget=SharedBudget(client, ...))``: one budget on the scheduler;
- ``one_process``: ``run_bounded(..., budget=Budget(R, T))`` in this process, no cluster.

For each: 429s, the share of T used in the steady state, the wall time; for the shared budget, the median time
a reserve took beyond its wait in the budget (the round trip to the scheduler: what sharing adds per call).
Also how long a 4-worker LocalCluster takes to start and to close.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab import Agent, Fulfilled, run_bounded
from agentlab.bench import target
from agentlab.bench.budgets import INSTRUCTIONS, drain, read_stats, sample, steady_share
from agentlab.bench.budgets import TPM as BUDGETS_TPM
from agentlab.budget import Budget
from agentlab.offline import OfflineServer, start_process

__all__ = ["run"]

N, QUICK_N = 2000, 200
WORKERS = 4
SCALE, BASE_LATENCY = 0.01, 30.0  # as section "budgets": a minute of 0.6 s, a model call of 0.3 s
RPM, TPM = 60, 3000  # per (scaled) minute: TPM binds, at about 55 one-call conversations a second
CONTENDERS = ("per_worker", "shared", "one_process")


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    from dask.distributed import Client, LocalCluster  # the optional extra: loaded by this section only

    n = (sizes or [QUICK_N if quick else N])[0]
    server = start_process(time_scale=SCALE, base_latency=BASE_LATENCY, rpm=RPM, tpm=TPM)
    scale, os.environ["AGENTLAB_TIME_SCALE"] = os.environ.get("AGENTLAB_TIME_SCALE"), str(SCALE)  # workers inherit it
    try:
        started = time.perf_counter()
        cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        up = time.perf_counter() - started
        try:
            results = {name: measure(server, client, name, n) for name in CONTENDERS}
        finally:
            closing = time.perf_counter()
            client.close()
            cluster.close()
            startup = up + time.perf_counter() - closing
    finally:
        server.stop()
        os.environ.pop("AGENTLAB_TIME_SCALE") if scale is None else os.environ.update(AGENTLAB_TIME_SCALE=scale)
    return report(n, results, up, startup)


def report(n: int, results: dict[str, dict[str, Any]], up: float, startup: float) -> dict[str, Any]:
    per_worker, shared = results["per_worker"], results["shared"]
    overshoot = target(
        "per_worker 429s - shared 429s (the overshoot)", per_worker["rate_limited"] - shared["rate_limited"], ">=", 1
    )
    targets = [
        target("shared: responses with status 429", shared["rate_limited"], "<=", 0),
        target("shared: steady-state tokens per minute / T", shared["steady_share"], ">=", 0.9),
        overshoot,
        target("shared: added ms per model call (median)", 1000 * shared["overhead"], "<=", 2.0),
        target(f"{WORKERS}-worker LocalCluster start + close (s)", startup, "<=", 10.0),
    ]
    header = f"N={n} over {WORKERS} workers, serve --rpm {RPM} --tpm {TPM} --time-scale {SCALE}; cluster up {up:.1f} s"
    lines = [header, f"{'contender':14} {'429s':>6} {'failed':>7} {'wall s':>7} {'steady %T':>9} {'added ms':>9}"]
    for name, r in results.items():
        added = f"{1000 * r['overhead']:9.2f}" if r["overhead"] is not None else f"{'-':>9}"
        line = f"{name:14} {r['rate_limited']:>6} {r['failed']:>7} {r['wall']:>7.1f} {100 * r['steady_share']:>8.0f}%"
        lines.append(line + " " + added)
    return {"n": n, "rpm": RPM, "tpm": TPM, "time_scale": SCALE, "results": results, "lines": lines, "targets": targets}


def measure(server: OfflineServer, client: Any, name: str, n: int) -> dict[str, Any]:
    drain(server)  # another job has just spent this minute, as on a busy key
    return asyncio.run(measure_on(server, client, name, n))


async def measure_on(server: OfflineServer, client: Any, name: str, n: int) -> dict[str, Any]:
    from agentlab.cluster import SharedBudget, run_distributed

    model = AsyncOpenAI(base_url=server.base_url, api_key="offline", http_client=DefaultAioHttpClient())
    agent = Agent("calc", INSTRUCTIONS, client=model)  # one model call per conversation, about 90 tokens
    prompts = [f"What is {i} + {i + 2}?" for i in range(n)]
    shared = SharedBudget(client, requests_per_minute=RPM, tokens_per_minute=TPM) if name == "shared" else None
    samples: list[tuple[float, int, int]] = []
    before = await asyncio.to_thread(read_stats, server)
    sampler = asyncio.create_task(sample(server, samples))
    started = time.monotonic()
    try:
        if name == "one_process":
            outcomes = await run_bounded(agent, prompts, budget=Budget(RPM, TPM))
        else:
            outcomes = await run_distributed(agent, prompts, client, budget=shared or Budget(RPM, TPM))
    finally:
        wall = time.monotonic() - started
        sampler.cancel()
        await model.close()
    after = await asyncio.to_thread(read_stats, server)
    return {
        "rate_limited": after["ratelimit"]["refused"] - before["ratelimit"]["refused"],
        "failed": sum(not isinstance(o, Fulfilled) for o in outcomes),
        "wall": wall,
        "steady_share": steady_share(samples, started, wall) * BUDGETS_TPM / TPM,  # that helper divides by its T
        "overhead": shared.stats()["median_overhead"] if shared else None,
    }
