"""``agentlab bench --section traces`` from an empty folder: a real batch of 1000 conversations exported both ways.

Only the section's contract is checked here (its figures come from its own run, and their targets are printed as
PASS or MISS); the speed itself is the benchmark's job, on a machine that is not running the suite.
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
