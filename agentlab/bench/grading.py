"""Section "grading": ``python -m agentlab grade`` on 30 learners' submissions of exercise 01.

The class is made from the course's own exercise notebook, its answer cell edited: the solution's answer for
most learners, and wrong answers, a cell that raises, a cell that never ends, a kernel that dies, a deleted
answer cell, a file that is not JSON and a learner who handed nothing in. The grader runs as a teacher runs
it, in its own process (``--time-scale`` 0.1, the default), with ``--jobs`` at twice the cores and at the
default, and a ``--timeout`` of 20 s, so the endless cell holds one slot for 20 s. The figure is the wall time
of the whole command; the load average and the CPU seconds are recorded beside it, since other work on the
same cores slows every kernel down.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agentlab.classroom.course import exercise_notebooks, solution_of
from agentlab.classroom.notebook import answer_cells, is_check_cell, source_of

TARGET_SECONDS = 60.0
TIMEOUT = 20
WRONG = "results = [await agent.run(prompt) for prompt in prompts]\ntotal = 100.0\n"
BAD = {
    "raises": 'raise RuntimeError("I give up")\n',
    "endless": "import time\nwhile True:\n    time.sleep(0.05)\n",
    "dies": "import os\nos._exit(1)\n",
}


def mix(n: int) -> list[str]:
    """The cases of ``n`` learners: one of each bad case, a sixth wrong, the rest right."""
    bad = ["wrong"] * max(1, n // 6) + [*BAD, "deleted", "not json", "missing"]
    return bad + ["right"] * max(0, n - len(bad))


def make_class(root: Path, n: int) -> Counter[str]:
    exercise = exercise_notebooks()["01"]
    notebook = json.loads(exercise.read_text(encoding="utf-8"))
    solution = json.loads(solution_of(exercise).read_text(encoding="utf-8"))
    answer = answer_cells(notebook["cells"])[0]
    right = solution_answers(notebook, solution)[0]
    cases = mix(n)
    for index, case in enumerate(cases):
        folder = root / f"learner{index:02d}"
        folder.mkdir(parents=True)
        if case == "missing":
            continue
        cells = [c for c in notebook["cells"] if not (case == "deleted" and c is answer)]
        answer["source"] = {"right": right, "wrong": WRONG}.get(case, BAD.get(case, ""))
        text = "this is not a notebook" if case == "not json" else json.dumps({**notebook, "cells": cells})
        (folder / exercise.name).write_text(text, encoding="utf-8")
    return Counter(cases)


def solution_answers(exercise: dict[str, Any], solution: dict[str, Any]) -> list[str]:
    """The solution's version of each answer cell: the cell with the same id, or else the one in the same place
    among the code cells, counted from the top (notebooks built apart have different ids)."""
    by_id = {cell.get("id"): cell for cell in solution["cells"]}
    code = [cell for cell in exercise["cells"] if cell.get("cell_type") == "code"]
    solved = [cell for cell in solution["cells"] if cell.get("cell_type") == "code"]
    found = []
    for answer in answer_cells(exercise["cells"]):
        match, place = by_id.get(answer.get("id")), code.index(answer)
        if match is None and place < len(solved) and not is_check_cell(solved[place]):
            match = solved[place]
        found.append(source_of(match) if match else "")
    return found


def children_cpu() -> float:
    """CPU seconds of the finished child processes (the grader, its zygote and every kernel): a figure that,
    unlike the wall time, does not grow when other work shares the cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def grade_once(root: Path, out: Path, jobs: int) -> dict[str, Any]:
    """One ``python -m agentlab grade`` of the class: wall and CPU seconds, the load, the statuses."""
    command = [sys.executable, "-m", "agentlab", "grade", str(root), "--out", str(out), "--timeout", str(TIMEOUT)]
    started, cpu_before = time.perf_counter(), children_cpu()
    subprocess.run([*command, "--jobs", str(jobs)], check=True, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    with (out / "grades.csv").open(encoding="utf-8") as file:
        statuses = Counter(row["status"] for row in csv.DictReader(file))
    return {
        "jobs": jobs,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "load_average": os.getloadavg()[0],
        "statuses": dict(statuses),
    }


def run(quick: bool) -> dict[str, Any]:
    """Twice: with ``--jobs`` at twice the cores (kernels mostly wait, on the server and on messages, so that
    keeps the cores busy), and at the default, one per core: the figure against the target."""
    n, cores = (8 if quick else 30), os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="agentlab-bench-grading-") as folder:
        cases = make_class(Path(folder) / "class", n)
        runs = [grade_once(Path(folder) / "class", Path(folder) / f"report{jobs}", jobs) for jobs in (2 * cores, cores)]
    lines = [
        f"grading {n} learners' exercise 01 ({', '.join(f'{k} {v}' for k, v in sorted(cases.items()))}), "
        f"--jobs {r['jobs']}: {r['seconds']:.1f} s (load average {r['load_average']:.1f}; "
        f"{r['cpu_seconds']:.1f} s of CPU in all); statuses {dict(sorted(r['statuses'].items()))}"
        for r in runs
    ]
    default = runs[1]  # the figure against the target: --jobs at its default, as a teacher runs it
    return {
        "learners": n,
        "cases": dict(cases),
        "runs": runs,
        "lines": lines,
        "targets": [
            {
                "figure": f"grade {n} submissions, default --jobs {default['jobs']} (s)",
                "value": default["seconds"],
                "target": f"<= {TARGET_SECONDS:g}",
                "pass": default["seconds"] <= TARGET_SECONDS,
            }
        ],
    }
