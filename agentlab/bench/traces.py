"""Section "traces": how long a batch of 1000 conversations takes to export (``agentlab.traces``).

The batch is real: 1000 math conversations (a tool call each, a tenth of them failing on purpose) run with
``run_settled`` on the offline model's in-process transport, at a small time scale since only the export is
timed. Then, best of a few runs each:

- the Chrome trace: ``write_chrome_trace`` to a file (building the events, JSON, writing);
- OpenTelemetry: ``export_opentelemetry`` into the SDK's ``InMemorySpanExporter`` behind a
  ``SimpleSpanProcessor`` (every span goes through the SDK's whole path, one by one).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agentlab import Agent, Batch, Outcome, make_client, offline, run_settled
from agentlab.bench import target
from agentlab.tools.math import MATH_TOOLS
from agentlab.traces import export_opentelemetry, write_chrome_trace

N = 1000
CHROME_TARGET_S = 1.0
OTEL_TARGET_S = 3.0


def make_batch(n: int) -> Batch[Outcome]:
    """``n`` real conversations on the in-process transport; every tenth one fails (a 500), and only those."""
    config = offline.config_from_env({"AGENTLAB_TIME_SCALE": "0.01"})
    http = httpx.AsyncClient(transport=offline.transport(config))
    # no retries, so that the 500s fail at once; a long timeout, so that a loaded machine fails nothing else
    client = make_client(max_retries=0, timeout=120, http_client=http)
    agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS, client=client)
    prompts = [f"What is {i} + {i + 1}?" + (" [fault=500]" if i % 10 == 9 else "") for i in range(n)]
    return asyncio.run(run_settled(agent, prompts))


def best_seconds(work: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def run(quick: bool) -> dict[str, Any]:
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ModuleNotFoundError:
        return {
            "lines": ["traces: skipped, OpenTelemetry is not installed (pip install 'agentlab[otel]')"],
            "targets": [],
        }
    repeat = 2 if quick else 5
    batch = make_batch(N)
    spans = N + sum(len(c.spans) for c in batch.report.conversations)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batch.json"
        chrome_s = best_seconds(lambda: write_chrome_trace(batch, path), repeat)
        size_mb = path.stat().st_size / 1e6

    def to_memory() -> None:
        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        export_opentelemetry(batch, tracer_provider=provider)
        assert len(memory.get_finished_spans()) == spans  # a fast export that lost spans would not count
        provider.shutdown()

    otel_s = best_seconds(to_memory, repeat)
    return {
        "conversations": N,
        "failed": batch.report.failed,
        "spans": spans,
        "chrome_trace_s": chrome_s,
        "chrome_trace_mb": size_mb,
        "opentelemetry_s": otel_s,
        "cpus": os.cpu_count(),
        "lines": [
            f"traces: a batch of {N} conversations ({batch.report.failed} failed, {spans} spans): Chrome trace "
            f"{chrome_s:.3f} s ({size_mb:.1f} MB), OpenTelemetry into an in-memory exporter {otel_s:.3f} s "
            f"(best of {repeat}, {os.cpu_count()} CPUs)"
        ],
        "targets": [
            target(f"Chrome trace of {N} conversations, s", chrome_s, "<=", CHROME_TARGET_S),
            target(f"OpenTelemetry spans of {N} conversations, s", otel_s, "<=", OTEL_TARGET_S),
        ],
    }
