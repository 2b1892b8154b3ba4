"""A smoke test of the benchmark: it runs end to end and writes its figures. (Speed is the benchmark's job.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_quick_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab", "bench", "--quick", "--n", "10", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    contenders = {r["contender"] for r in report["results"]}
    expected = {"agentlab_default", "agentlab_same_client", "raw_httpx", "raw_aiohttp", "agentlab_serial"}
    if "skipping the Agents SDK" not in proc.stdout:
        expected.add("agents_sdk")
    assert contenders == expected
    assert all(r["wrong_answers"] == 0 and r["n"] == 10 for r in report["results"])
    assert report["machine"]["cores"] >= 1 and report["server_requests_per_second"] > 0
    assert "PASS" in proc.stdout or "MISS" in proc.stdout
    assert (tmp_path / "results.png").stat().st_size > 5_000
