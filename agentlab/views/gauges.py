"""Views of a rate limit for lesson 07: what the server let through over time, a chart of it, a live gauge.

- ``ServerMeter(url)``: while its ``async with`` block runs, it reads the offline server's ``/offline/stats``
  every ``every`` seconds and keeps ``(seconds, tokens let through, 429s)`` samples.
- ``tokens_chart(samples, tpm, minute)``: tokens per window against the budget line, with the 429s marked.
- ``BudgetGauge(budget)``: two ipywidgets bars, requests and tokens the budget holds, redrawn as it runs.

matplotlib and ipywidgets are imported only when a chart or a gauge is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agentlab.budget import Budget

__all__ = ["ServerMeter", "tokens_chart", "BudgetGauge"]


class ServerMeter:
    """Samples of what the offline server at ``url`` let through: ``(seconds, tokens, 429s)`` since the start."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        self.url, self.every = url.removesuffix("/v1"), every
        self.samples: list[tuple[float, int, int]] = []

    def read(self) -> tuple[int, int]:
        with urllib.request.urlopen(self.url + "/offline/stats", timeout=10) as answer:
            stats = json.load(answer)
        return int(stats["ratelimit"]["spent_tokens"]), int(stats["statuses"].get("429", 0))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ServerMeter]:
        tokens0, refused0 = await asyncio.to_thread(self.read)
        started = time.perf_counter()

        async def sample() -> None:
            tokens, refused = await asyncio.to_thread(self.read)
            self.samples.append((time.perf_counter() - started, tokens - tokens0, refused - refused0))

        async with repeating(sample, self.every):
            yield self

    @property
    def rate_limited(self) -> int:
        """429s the server sent while the meter ran."""
        return self.samples[-1][2] if self.samples else 0


def tokens_chart(samples: list[tuple[float, int, int]], tpm: float, minute: float, title: str = "") -> Any:
    """Tokens let through per quarter minute, against the limit's quarter (the budget line); 429s in red."""
    from agentlab.charts import Chart  # a Figure that shows itself as a PNG, with no pyplot (charts.py)

    window = minute / 4
    bins = max(1, int(samples[-1][0] / window) + 1) if samples else 1
    spent, refused = [0] * bins, [0] * bins
    for (_, k0, r0), (t1, k1, r1) in zip(samples, samples[1:], strict=False):
        spent[min(bins - 1, int(t1 / window))] += k1 - k0
        refused[min(bins - 1, int(t1 / window))] += r1 - r0
    fig = Chart(figsize=(8, 3.2))
    ax = fig.subplots()
    starts = [i * window for i in range(bins)]
    ax.bar(starts, spent, width=window * 0.9, align="edge", color="#4c72b0", label="tokens let through")
    ax.axhline(tpm / 4, color="black", linestyle="--", label=f"the limit: {tpm:g} tokens per minute")
    marks = [(s + window / 2, max(spent) * 0.05 + 1) for s, r in zip(starts, refused, strict=True) if r]
    if marks:
        ax.scatter(*zip(*marks, strict=True), color="red", marker="x", zorder=3, label="429s in this window")
    ax.set_xlabel(f"seconds (one minute of the server = {minute:.3g} s)")
    ax.set_ylabel("tokens per quarter minute")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # outside: covers no bar
    fig.tight_layout()
    return fig


class BudgetGauge:
    """A live view of a budget: how many requests and tokens it holds now, as two bars."""

    def __init__(self, budget: Budget, every: float = 0.1) -> None:
        import ipywidgets as widgets

        self.budget, self.every = budget, every
        self.requests = widgets.FloatProgress(min=0, max=1, description="requests")
        self.tokens = widgets.FloatProgress(min=0, max=1, description="tokens")
        self.label = widgets.HTML()
        self.widget = widgets.VBox([self.requests, self.tokens, self.label])

    def redraw(self) -> None:
        budget = self.budget
        for bar, bucket in ((self.requests, budget.requests), (self.tokens, budget.tokens)):
            if bucket is not None:
                bucket.refill(budget.clock())
                bar.max, bar.value = bucket.capacity, max(0.0, bucket.level)
        self.label.value = (
            f"{budget.stats.calls} calls answered, {len(budget.outstanding)} in flight, "
            f"{budget.stats.rate_limited} answers with status 429"
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[BudgetGauge]:
        async def redraw() -> None:
            self.redraw()

        async with repeating(redraw, self.every):
            yield self


@contextlib.asynccontextmanager
async def repeating(step: Callable[[], Awaitable[None]], every: float) -> AsyncIterator[None]:
    """Run ``step`` every ``every`` seconds while the block runs, and once more when it ends (the final state)."""

    async def again_and_again() -> None:
        while True:
            await step()
            await asyncio.sleep(every)

    task = asyncio.create_task(again_and_again())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await step()
