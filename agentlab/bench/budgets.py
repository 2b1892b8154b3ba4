"""Section "budgets": N conversations against ``serve --rpm R --tpm T``, four ways to live with the limit.

    agentlab bench --section budgets            # N = 2000
    agentlab bench --quick --section budgets    # N = 60

The offline server runs in its own process at a time scale of 0.01: its "minute" lasts 0.6 s, so a batch
that needs two and a half hours of the limit takes about a minute and a half. The contenders run one after
another, each right after another job has spent the server's minute (``drain``: large requests until a 429),
as on a busy key. Each model call takes 30 s × 0.01 = 0.3 s (a slow model, so that concurrency matters).
Each conversation asks for one sum and gets its answer in one model call of about 90 tokens.

- (a) ``run_concurrent`` with the openai client's own retries (it reads ``retry-after-ms``; raised to 50
  retries so that the batch can finish at all).
- (b) ``run_bounded(max_concurrency=k)`` with k tuned by hand, the client's default retries.
- (c) The OpenAI cookbook's ``api_request_parallel_processor`` algorithm (``CookbookLimiter`` below): request
  and token buckets that start full, estimates never refunded, a fixed pause of a quarter minute after a 429.
- (d) agentlab's budget: ``run_bounded(agent, prompts, requests_per_minute=R, tokens_per_minute=T)``.

For each: the 429s the server sent, the retries, the conversations that failed, the wall time, and the tokens
per minute that the server let through in the steady state (from 20% to 80% of the wall time, sampled from
``/offline/stats``) as a share of T.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI, DefaultAioHttpClient
from openai.types.responses import Response

from agentlab import Agent, BackendError, Fulfilled, run_bounded, run_concurrent
from agentlab.bench import target
from agentlab.bucket import Bucket
from agentlab.model import Send
from agentlab.offline import OfflineServer, start_process

__all__ = ["run", "measure", "figures", "CONTENDERS", "CookbookLimiter"]

N, QUICK_N = 2000, 60
SCALE = 0.01  # the server's minute lasts 60 × 0.01 = 0.6 s, so that a short run spans many minutes
BASE_LATENCY = 30.0  # seconds per model call before scaling (0.3 s here): a slow model, so that k matters
RPM, TPM = 20, 1200  # per (scaled) minute: TPM binds, at about 23 calls per second
HAND_TUNED_K = 8  # (b): the concurrency that came closest to T without a storm of 429s, tried by hand
INSTRUCTIONS = (
    "You are a careful calculator. Read the question, work out the arithmetic exactly, and answer in one short "
    "sentence that gives the number. Do not explain the steps, do not add anything else, and never guess: if "
    "the question is not arithmetic, say politely that you only do arithmetic."
)
CONTENDERS = ("a_concurrent_client_retries", "b_bounded_k", "c_cookbook", "d_budget")


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    """Each contender in turn on one limited server (a full minute apart), and the targets of issue 15."""
    n = (sizes or [QUICK_N if quick else N])[0]
    server = start_process(time_scale=SCALE, base_latency=BASE_LATENCY, rpm=RPM, tpm=TPM)
    scale, os.environ["AGENTLAB_TIME_SCALE"] = os.environ.get("AGENTLAB_TIME_SCALE"), str(SCALE)  # as in a lesson
    try:
        results = {name: measure(server, name, n) for name in CONTENDERS}
    finally:
        server.stop()
        os.environ.pop("AGENTLAB_TIME_SCALE") if scale is None else os.environ.update(AGENTLAB_TIME_SCALE=scale)
    a, c, d = (results[name] for name in ("a_concurrent_client_retries", "c_cookbook", "d_budget"))
    a_wall = math.inf if a["failed"] else a["wall"]  # run_concurrent is all or nothing
    targets = [
        target("(d) responses with status 429", d["rate_limited"], "<=", 0),
        target("(d) steady-state tokens per minute / T", d["steady_share"], ">=", 0.9),
        target("(d) share of T / (c) share of T", d["steady_share"] / max(c["steady_share"], 1e-9), ">=", 1.0),
        target("(c) 429s - (d) 429s", c["rate_limited"] - d["rate_limited"], ">=", 1),
        target("(d) wall time / (a) wall time (inf: (a) did not finish)", d["wall"] / a_wall, "<=", 1.0),
    ]
    header = f"N={n}, serve --rpm {RPM} --tpm {TPM} --time-scale {SCALE} (a minute of {60 * SCALE:g} s)"
    lines = [header, f"{'contender':30} {'429s':>7} {'retries':>8} {'failed':>7} {'wall s':>7} {'steady %T':>9}"]
    lines += [describe(name, r) for name, r in results.items()]
    return {"n": n, "rpm": RPM, "tpm": TPM, "time_scale": SCALE, "results": results, "lines": lines, "targets": targets}


def describe(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:30} {r['rate_limited']:>7} {r['retries']:>8} {r['failed']:>7} {r['wall']:>7.1f} "
        f"{100 * r['steady_share']:>8.0f}%"
    )


def measure(server: OfflineServer, name: str, n: int) -> dict[str, Any]:
    """One contender: N conversations once the server's buckets are full again, its counters sampled."""
    drain(server)  # another job has just spent this minute: the usual state of a busy key
    return asyncio.run(measure_on(server, name, n))


def drain(server: OfflineServer) -> None:
    """Spend what the server's token bucket holds: rounds of 8 large requests at once, until one gets a 429."""
    body = json.dumps({"model": "gpt-5-mini", "input": "Please add up these numbers. " * 80}).encode()

    def send(_: int) -> int:
        request = urllib.request.Request(server.base_url + "/responses", body, {"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError as refused:
            refused.close()
            return refused.code
        return 200

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while 429 not in pool.map(send, range(8)):
            pass


async def measure_on(server: OfflineServer, name: str, n: int) -> dict[str, Any]:
    retries = {"a_concurrent_client_retries": 50, "b_bounded_k": 2}.get(name, 0)
    client = AsyncOpenAI(
        base_url=server.base_url, api_key="offline", max_retries=retries, http_client=DefaultAioHttpClient()
    )
    agent = Agent("calc", INSTRUCTIONS, client=client)  # one model call per conversation, about 100 tokens
    prompts = [f"What is {i} + {i + 2}?" for i in range(n)]
    samples: list[tuple[float, int, int]] = []
    before = await asyncio.to_thread(read_stats, server)
    sampler = asyncio.create_task(sample(server, samples))
    started = time.monotonic()  # the server's clock too (one machine): samples are timed by the server
    try:
        failed = await CONTENDER_RUNS[name](agent, prompts)
    finally:
        wall = time.monotonic() - started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await client.close()
    after = await asyncio.to_thread(read_stats, server)
    requests = after["requests"] - before["requests"]
    ok, rate_limited = (after["statuses"].get(s, 0) - before["statuses"].get(s, 0) for s in ("200", "429"))
    spent = after["ratelimit"]["spent_tokens"] - before["ratelimit"]["spent_tokens"]
    spent0, refused0 = before["ratelimit"]["spent_tokens"], before["ratelimit"]["refused"]
    return {
        "n": n,
        "wall": wall,
        "rate_limited": rate_limited,
        "retries": requests - ok - failed,
        "failed": failed,
        "requests": requests,
        "spent_tokens": spent,
        "steady_share": steady_share(samples, started, wall),
        "overall_share": spent / wall * 60 * SCALE / TPM,
        "samples": [(round(t - started, 3), tokens - spent0, refused - refused0) for t, tokens, refused in samples],
    }


async def run_a(agent: Agent, prompts: list[str]) -> int:
    try:
        await run_concurrent(agent, prompts)  # all or nothing: a conversation that fails raises
    except BackendError:
        return len(prompts)  # the storm outlasted a conversation's retries: the whole batch is lost
    return 0


async def run_b(agent: Agent, prompts: list[str]) -> int:
    outcomes = await run_bounded(agent, prompts, max_concurrency=HAND_TUNED_K)
    return sum(not isinstance(o, Fulfilled) for o in outcomes)


async def run_c(agent: Agent, prompts: list[str]) -> int:
    limiter = CookbookLimiter(RPM, TPM, minute=60 * SCALE)

    async def one(prompt: str) -> bool:
        try:
            await agent.run(prompt, budget=limiter)
        except Exception:
            return False
        return True

    return sum(not ok for ok in await asyncio.gather(*(one(p) for p in prompts)))


async def run_d(agent: Agent, prompts: list[str]) -> int:
    outcomes = await run_bounded(agent, prompts, requests_per_minute=RPM, tokens_per_minute=TPM)
    return sum(not isinstance(o, Fulfilled) for o in outcomes)


CONTENDER_RUNS: dict[str, Callable[[Agent, list[str]], Awaitable[int]]] = {
    "a_concurrent_client_retries": run_a,
    "b_bounded_k": run_b,
    "c_cookbook": run_c,
    "d_budget": run_d,
}


async def sample(server: OfflineServer, samples: list[tuple[float, int, int]], every: float = 0.2) -> None:
    """Record (time, tokens the server has let through, 429s so far) every ``every`` seconds."""
    while True:
        counters = await asyncio.to_thread(read_stats, server)
        limits = counters["ratelimit"]
        samples.append((limits["clock"], limits["spent_tokens"], limits["refused"]))
        await asyncio.sleep(every)


def read_stats(server: OfflineServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/offline/stats", timeout=30) as answer:
        result: dict[str, Any] = json.load(answer)
    return result


def steady_share(samples: list[tuple[float, int, int]], started: float, wall: float) -> float:
    """Tokens per minute between 20% and 80% of the wall time, as a share of T."""
    window = [(t, tokens) for t, tokens, _ in samples if started + 0.2 * wall <= t <= started + 0.8 * wall]
    if len(window) < 2 or window[-1][0] <= window[0][0]:
        return 0.0
    (t0, k0), (t1, k1) = window[0], window[-1]
    return (k1 - k0) / (t1 - t0) * 60 * SCALE / TPM


class CookbookLimiter:
    """Contender (c): the OpenAI cookbook's ``api_request_parallel_processor`` pacing, behind a budget's one method.

    Written here from its description, for model calls inside agent conversations (the cookbook's script reads
    requests from a JSONL file; the pacing is the same):

    - Two buckets, requests and tokens, that **start full** and refill at the limit per minute, capped at it.
    - Each request is charged one request and an **estimate** of its tokens: the prompt's tokens plus
      ``max_tokens × n`` for the completion (15 when the request names no ``max_tokens``). The estimate is
      **never refunded** nor corrected by what the answer used, and no rate-limit header is read.
    - A request starts when both buckets hold its charge.
    - After a rate-limit error, **no request starts for a fixed 15 s** (here a quarter of the scaled minute),
      whatever ``Retry-After`` says; the failed request is retried, up to 5 attempts in all.
    """

    COMPLETION_TOKENS = 15  # the cookbook's default max_tokens, when a request sets none
    ATTEMPTS = 5
    PAUSE_MINUTES = 15 / 60  # seconds_to_pause_after_rate_limit_error = 15, of a 60 s minute

    def __init__(self, requests_per_minute: float, tokens_per_minute: float, *, minute: float = 60.0) -> None:
        now = time.monotonic()
        self.requests = Bucket(requests_per_minute, minute, requests_per_minute, now)  # both start full
        self.tokens = Bucket(tokens_per_minute, minute, tokens_per_minute, now)
        self.pause = self.PAUSE_MINUTES * minute
        self.last_rate_limit_error = -math.inf
        self.lock = asyncio.Lock()

    async def call(self, send: Send, input_tokens: int) -> Response:
        for attempt in range(self.ATTEMPTS):
            await self.wait_for_capacity(input_tokens + self.COMPLETION_TOKENS)
            try:
                response, _ = await send(attempt)
                return response
            except openai.RateLimitError:
                self.last_rate_limit_error = time.monotonic()
                if attempt == self.ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def wait_for_capacity(self, consumption: int) -> None:
        """Start when both buckets hold the charge, and never within the pause after a rate-limit error."""
        async with self.lock:
            while True:
                now = time.monotonic()
                if (pause := self.last_rate_limit_error + self.pause - now) > 0:
                    await asyncio.sleep(pause)  # "pause to cool down"
                    continue
                self.requests.refill(now)
                self.tokens.refill(now)
                if self.requests.level >= 1 and self.tokens.level >= consumption:
                    self.requests.take(1, now)
                    self.tokens.take(consumption, now)  # charged for good: never refunded
                    return
                short = max(self.requests.seconds_until(1), self.tokens.seconds_until(consumption))
                await asyncio.sleep(max(0.001, short))


def figures(result: dict[str, Any], out: Path) -> list[Path]:
    """Tokens per minute over time for each contender, against the limit T; the 429s beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_axis, refused_axis) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1))
    for name, r in result["results"].items():
        times = [t for t, _, _ in r["samples"]]
        rates = [
            (k1 - k0) / (t1 - t0) * 60 * SCALE / TPM
            for (t0, k0, _), (t1, k1, _) in zip(r["samples"], r["samples"][1:], strict=False)
            if t1 > t0
        ]
        rate_axis.plot(times[1 : len(rates) + 1], rates, label=f"{name} ({r['wall']:.0f} s)")
        refused_axis.plot(times, [refused for _, _, refused in r["samples"]], label=name)
    rate_axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="the limit T")
    rate_axis.set_ylabel("tokens per minute / T")
    rate_axis.set_title(f"N={result['n']} conversations against serve --rpm {RPM} --tpm {TPM}")
    rate_axis.legend(fontsize=8)
    refused_axis.set_ylabel("429s so far")
    refused_axis.set_xlabel("seconds since the batch started")
    path = out / "budgets.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
