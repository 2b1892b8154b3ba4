"""Run each lesson as a learner does and print a table: time, errors, and whether its stored outputs still hold.

    python scripts/lesson_timings.py             # every lesson and appendix (and solutions with --solutions)
    python scripts/lesson_timings.py 07 A1       # only the notebooks whose name starts with these
    python scripts/lesson_timings.py --stored    # no run: the times recorded in the stored outputs

Each notebook runs top to bottom in a fresh kernel with nbclient at the learner's default settings: the offline
backend, AGENTLAB_TIME_SCALE unset (1). Its columns:

- ``seconds``: from the first cell's start to the last cell's end, as a learner waits after "Run All" (the
  kernel's own start, about 2 s, is left out). A lesson must take at most 90 s.
- ``stored s``: the same sum read from the stored outputs (scripts/build_notebooks.py records it).
- ``errors``: cells that raised. A lesson must have none.
- ``outputs``: of the cells whose outputs are deterministic (no ``nbval-ignore-output`` tag), how many give
  the stored text again, with timings and percentages masked by tests/nbval_sanitize.cfg's own patterns.
  A cell that differs is named, with its first differing line.

The notebooks on disk are not changed. The exit status is 1 when a lesson is over 90 s, raised, or differs.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LIMIT = 90.0  # seconds a lesson may take at the learner's settings
IGNORED = ("nbval-ignore-output", "nbval-skip")
TEXT = ("text/plain", "text/markdown")  # what nbval compares of a display (pictures and widgets vary)


def sanitizers() -> list[tuple[re.Pattern[str], str]]:
    """The patterns nbval masks in both outputs before comparing (tests/nbval_sanitize.cfg)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(config[name]["regex"]), config[name]["replace"]) for name in config.sections()]


def seconds_stored(notebook: Any) -> float:
    total = 0.0
    for cell in notebook.cells:
        times = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in times and "iopub.status.idle" in times:
            started = datetime.fromisoformat(times["iopub.execute_input"].replace("Z", "+00:00"))
            ended = datetime.fromisoformat(times["iopub.status.idle"].replace("Z", "+00:00"))
            total += (ended - started).total_seconds()
    return total


def text_of(cell: Any, masks: list[tuple[re.Pattern[str], str]]) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
        for mime in TEXT:
            if mime in output.get("data", {}) and "application/vnd.jupyter.widget-view+json" not in output["data"]:
                value = output["data"][mime]
                parts.append(value if isinstance(value, str) else "".join(value))
    text = "".join(parts)
    for pattern, replacement in masks:
        text = pattern.sub(replacement, text)
    return text


def compare(stored: Any, fresh: Any) -> tuple[int, int, list[str]]:
    """(cells compared, cells equal, what differs) over the code cells nbval compares strictly."""
    masks = sanitizers()
    compared = equal = 0
    differences = []
    for index, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True)):
        if old.cell_type != "code" or any(tag in old.get("metadata", {}).get("tags", []) for tag in IGNORED):
            continue
        before, after = text_of(old, masks), text_of(new, masks)
        compared += 1
        if before == after:
            equal += 1
            continue
        lines = [(a, b) for a, b in zip(before.splitlines() + [""], after.splitlines() + [""], strict=False) if a != b]
        first = lines[0] if lines else (before[-60:], after[-60:])
        differences.append(f"cell {index}: stored {first[0][:70]!r} / now {first[1][:70]!r}")
    return compared, equal, differences


def run(path: Path) -> dict[str, Any]:
    stored = nbformat.read(path, as_version=4)
    fresh = nbformat.read(path, as_version=4)
    client = NotebookClient(
        fresh, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc).strip().splitlines()[-1][:120]
    wall = time.perf_counter() - started
    errors = sum(o.get("output_type") == "error" for c in fresh.cells for o in c.get("outputs", []))
    compared, equal, differences = compare(stored, fresh)
    return {
        "name": str(path.relative_to(NOTEBOOKS)),
        "seconds": seconds_stored(fresh) if not error else wall,
        "wall": wall,
        "stored": seconds_stored(stored),
        "errors": errors or bool(error),
        "compared": compared,
        "equal": equal,
        "differences": differences + ([f"stopped: {error}"] if error else []),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="only the notebooks whose name starts with these")
    parser.add_argument("--solutions", action="store_true", help="the exercises' solutions too")
    parser.add_argument("--stored", action="store_true", help="no run: the times in the stored outputs")
    args = parser.parse_args(argv)
    os.environ.pop("AGENTLAB_TIME_SCALE", None)  # the learner's default: 1
    os.environ["AGENTLAB_BACKEND"] = "offline"
    os.environ.pop("OPENAI_API_KEY", None)
    paths = sorted(NOTEBOOKS.glob("*.ipynb")) + (sorted((NOTEBOOKS / "solutions").glob("*.ipynb")) * args.solutions)
    paths = [p for p in paths if not args.prefixes or any(p.name.startswith(x) for x in args.prefixes)]
    if args.stored:
        for path in paths:
            print(f"{path.relative_to(NOTEBOOKS)}: {seconds_stored(nbformat.read(path, as_version=4)):.0f} s")
        return 0
    print(f"{'notebook':<52} {'seconds':>7} {'stored s':>8} {'errors':>6} {'outputs':>9}")
    failed = False
    for path in paths:
        row = run(path)
        outputs = f"{row['equal']}/{row['compared']}"
        print(
            f"{row['name']:<52} {row['seconds']:>7.1f} {row['stored']:>8.1f} {int(row['errors']):>6} {outputs:>9}",
            flush=True,
        )
        for difference in row["differences"]:
            print(f"    {difference}", flush=True)
        failed |= row["seconds"] > LIMIT or bool(row["errors"]) or row["equal"] < row["compared"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
