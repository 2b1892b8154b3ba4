"""agentlab.traces in processes of their own: OpenTelemetry's global provider, and the bench section.

- With no ``tracer_provider``, the spans go to the global one, which a process can set only once.
- ``agentlab bench --section traces`` from an empty folder: a real batch of 1000 conversations exported both
  ways. Only the section's contract is checked here; the speed itself is the benchmark's job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_traces_section_exports_a_batch_of_1000_both_ways(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab", "bench", "--quick", "--section", "traces", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    section = json.loads((tmp_path / "results.json").read_text())["sections"]["traces"]
    assert section["conversations"] == 1000 and section["failed"] == 100
    assert section["spans"] >= 1000 + 2 * 900  # each answered conversation: two model calls and a tool call
    assert section["chrome_trace_s"] > 0 and section["opentelemetry_s"] > 0 and section["chrome_trace_mb"] > 0
    figures = [t["figure"] for t in section["targets"]]
    assert figures == ["Chrome trace of 1000 conversations, s", "OpenTelemetry spans of 1000 conversations, s"]
    assert "traces: a batch of 1000 conversations" in proc.stdout


GLOBAL_PROVIDER = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agentlab.records import Batch, BatchReport, ConversationTiming, Span
from agentlab.traces import export_opentelemetry

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)
spans = (Span("model", "gpt-5-mini", 0.0, 0.5), Span("tool", "sum_numbers", 0.5, 0.6, call_id="c1"))
timing = ConversationTiming(0, 0.0, 0.7, "fulfilled", turns=2, spans=spans)
export_opentelemetry(Batch([], BatchReport("run_settled", 0.7, (timing,), "calc", 1_000.0)))
print(sorted(span.name for span in memory.get_finished_spans()))
"""


def test_with_no_tracer_provider_the_spans_go_to_the_global_one() -> None:
    # in a fresh interpreter: OpenTelemetry's global provider can be set only once per process
    proc = subprocess.run([sys.executable, "-c", GLOBAL_PROVIDER], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "['chat gpt-5-mini', 'execute_tool sum_numbers', 'invoke_agent calc']"
