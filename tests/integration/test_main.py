"""The command line: the demo runs offline, shows the claim in its numbers, and writes its chart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_offline_and_concurrent_beats_serial(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.2"}
    env.pop("OPENAI_API_KEY", None)
    out = tmp_path / "timeline.png"
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    serial = float(re.search(r"serial wall time\s+([\d.]+) s", text).group(1))  # type: ignore[union-attr]
    concurrent = float(re.search(r"concurrent wall time\s+([\d.]+) s", text).group(1))  # type: ignore[union-attr]
    print(f"\ndemo: serial {serial:.2f} s, concurrent {concurrent:.2f} s")
    assert concurrent <= 0.6 * serial
    answers = ["12 + 30 = 42.", "(3 + 4 + 5) * 2 = 24.", "(7 + 8) * (2 + 3) = 75.", "21 * 3 = 63.", "3.75."]
    for answer in answers:
        assert text.count(answer) == 3  # serial, concurrent, settled
    assert "[5] rejected   BackendError" in text
    assert f"timeline chart written to {out.resolve()}" in text
    assert out.stat().st_size > 5_000


def test_unknown_arguments_and_missing_command_are_usage_errors() -> None:
    for argv in (["demo", "--nope"], []):
        proc = subprocess.run([sys.executable, "-m", "agentlab", *argv], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "usage:" in proc.stderr
