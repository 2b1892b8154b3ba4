"""A class of learners made from the real exercise notebook 01, its answer cell edited learner by learner.

Each learner is (name, what they did, how their notebook is made). The right answer is the solution's own
answer cell; every other case is a mistake or a bad file that the grader must name instead of crashing on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXERCISE = next((NOTEBOOKS / "exercises").glob("01_*_exercise.ipynb"))
SOLUTION = NOTEBOOKS / "solutions" / EXERCISE.name.replace("_exercise", "_solution")

Notebook = dict[str, Any]


def load(path: Path) -> Notebook:
    notebook: Notebook = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def answer_index(notebook: Notebook) -> int:
    return next(i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code" and "TODO" in source(c))


def solution_answer() -> str:
    exercise = load(EXERCISE)
    answer_id = exercise["cells"][answer_index(exercise)]["id"]
    return next(source(c) for c in load(SOLUTION)["cells"] if c.get("id") == answer_id)


def with_answer(code: str) -> Callable[[], str]:
    def make() -> str:
        notebook = load(EXERCISE)
        notebook["cells"][answer_index(notebook)]["source"] = code
        return json.dumps(notebook)

    return make


def without_answer() -> str:
    notebook = load(EXERCISE)
    del notebook["cells"][answer_index(notebook)]
    return json.dumps(notebook)


def cheating() -> str:
    """The check redefined to always pass, the exercise module patched, and a forged verdict stored."""
    notebook = load(EXERCISE)
    cell = notebook["cells"][answer_index(notebook)]
    cell["source"] = (
        "import agentlab.exercises as ex, agentlab.exercises.ex01 as m\n"
        "m.check = lambda **_: ex.Feedback(True, ('forged',))\n"
        "check = lambda *a, **k: ex.Feedback(True, ('forged',))\n"
        "results = total = ...\n"
    )
    forged = {"exercise": "01", "passed": True, "messages": ["forged"]}
    cell["outputs"] = [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"application/vnd.agentlab.check+json": forged, "text/plain": "forged"},
        }
    ]
    return json.dumps(notebook)


def another_course() -> str:
    """A valid notebook under the exercise's file name, none of whose cells come from this course."""
    cells = [
        {"cell_type": "markdown", "id": "week1", "metadata": {}, "source": "# Week 1: data frames"},
        {"cell_type": "code", "id": "load", "metadata": {}, "execution_count": None, "outputs": [], "source": "x = 1"},
    ]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


RIGHT = solution_answer()
ANSWER_CELL = answer_index(load(EXERCISE)) + 1  # as the grader numbers cells: from 1, markdown included
WRONG = "results = [await agent.run(prompt) for prompt in prompts]\ntotal = 100.0\n"
LEARNERS: list[tuple[str, str, Callable[[], str] | None]] = [
    ("alice", "right answer", with_answer(RIGHT)),
    ("bob", "wrong total", with_answer(WRONG)),
    ("carol", "a cell that raises", with_answer('raise RuntimeError("I give up")\n')),
    ("dave", "a cell that never ends", with_answer("import time\nwhile True:\n    time.sleep(0.05)\n")),
    ("erin", "a kernel that dies", with_answer("import os\nos._exit(1)\n")),
    ("frank", "answer cell deleted", without_answer),
    ("grace", "answer cell emptied", with_answer("")),
    ("heidi", "not JSON", lambda: "this is not a notebook, it is my essay\n"),
    ("ivan", "JSON but no notebook", lambda: json.dumps({"hello": "world"})),
    ("judy", "never handed in", None),
    ("mallory", "a forged check", cheating),
    ("oscar", "another course's notebook", another_course),
    ("peggy", "two files for one exercise", with_answer(RIGHT)),
]
COPY = EXERCISE.name.replace(".ipynb", "-Copy1.ipynb")  # Jupyter's "Duplicate": peggy's second file


def make_class(root: Path, learners: list[tuple[str, str, Callable[[], str] | None]] = LEARNERS) -> Path:
    """One folder per learner; alice keeps hers one level down, as nbgrader's assignment folders do."""
    for name, _, make in learners:
        folder = root / name / ("ps1" if name == "alice" else "")
        folder.mkdir(parents=True)
        for file_name in (EXERCISE.name, COPY) if name == "peggy" else (EXERCISE.name,):
            if make is not None:
                (folder / file_name).write_text(make(), encoding="utf-8")
    return root


def processes_marked(mark: str) -> list[psutil.Process]:
    """The live processes whose environment holds AGENTLAB_TEST_RUN=mark: every process a command started
    with it inherits the mark (forked kernels too), even after it was orphaned and adopted by pid 1."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("AGENTLAB_TEST_RUN") == mark and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def survivors(mark: str, returned_at: float, grace: float = 2.0) -> list[str]:
    """The marked processes still alive ``grace`` seconds after the command returned (at ``returned_at``,
    ``time.monotonic()``), as ``pid command`` lines; it looks until then, not longer."""
    while True:
        alive = processes_marked(mark)
        if not alive or time.monotonic() >= returned_at + grace:
            return [describe(p) for p in alive]
        psutil.wait_procs(alive, timeout=0.1)


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:160]}"
    except psutil.Error:
        return f"{process.pid} (ended while being described)"
