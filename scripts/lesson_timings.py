"""How long each lesson and solution takes to run, read from its stored outputs (for docs/teaching.md).

    python scripts/lesson_timings.py

scripts/build_notebooks.py runs every lesson and solution at full speed (AGENTLAB_TIME_SCALE=1) and nbclient
records when each cell started and went idle; the sum over cells is the seconds a learner waits for
"Run All" (the kernel's start, about 2 s, comes on top).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def seconds_to_run(path: Path) -> float:
    total = 0.0
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        times = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in times and "iopub.status.idle" in times:
            started = datetime.fromisoformat(times["iopub.execute_input"].replace("Z", "+00:00"))
            ended = datetime.fromisoformat(times["iopub.status.idle"].replace("Z", "+00:00"))
            total += (ended - started).total_seconds()
    return total


def main() -> int:
    paths = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
    for path in paths:
        print(f"{path.relative_to(NOTEBOOKS)}: {seconds_to_run(path):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
