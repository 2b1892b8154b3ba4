"""Each check is judged where its check cell stands, with the values of that moment: exercise 02 has parts a and b,
both of which assign ``results``; each part gets its own row, judged on its own values.

The learners are made from the real exercise 02 and its solution. Before, the grader judged both checks at the
end of the notebook: ``b_only`` (part a left serial, part b right) passed part a on part b's results, and
``a_only`` (part b not started) failed part a with "fill in `results` first".
"""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

from agentlab.classroom.course import exercise_notebooks, solution_of
from agentlab.classroom.notebook import checked_exercise, is_check_cell, load_reference, prepare, source_of

EXERCISE = exercise_notebooks()["02"]
TIMEOUT = 15
pytestmark = pytest.mark.timeout(600)


def load(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def answers(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in notebook["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def learner(part_a: bool, part_b: bool | str, *, delete_check_a: bool = False) -> str:
    """Exercise 02 with part a and part b solved or not (part b may also be given as code)."""
    notebook, solved = load(EXERCISE), answers(load(solution_of(EXERCISE)))
    cell_a, cell_b = answers(notebook)
    if part_a:
        cell_a["source"] = solved[0]["source"]
    if part_b:
        cell_b["source"] = part_b if isinstance(part_b, str) else solved[1]["source"]
    if delete_check_a:  # and a check that always passes, defined by the learner
        notebook["cells"] = [c for c in notebook["cells"] if not source_of(c).startswith('check("02"')]
        cell_a["source"] = "check = lambda *a, **k: None\n" + source_of(cell_a)
    return json.dumps(notebook)


HANG = "import time\nwhile True:\n    time.sleep(0.05)\n"
CLASS = {  # learner: (their notebook, the expected status of 02 and of 02b)
    "a_only": (learner(True, False), ("passed", "failed")),
    "both": (learner(True, True), ("passed", "passed")),
    "b_only": (learner(False, True), ("failed", "passed")),
    "a_only_check_deleted": (learner(True, False, delete_check_a=True), ("passed", "failed")),
    "a_then_hang": (learner(True, HANG), ("passed", "timeout")),
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, str]]:
    root, out = tmp_path_factory.mktemp("class"), tmp_path_factory.mktemp("report")
    for name, (text, _) in CLASS.items():
        (root / name).mkdir()
        (root / name / EXERCISE.name).write_text(text, encoding="utf-8")
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_TEST_RUN": uuid.uuid4().hex}
    command = [sys.executable, "-m", "agentlab", "grade", str(root), "--out", str(out), "--timeout", str(TIMEOUT)]
    done = subprocess.run([*command, "--jobs", "2"], capture_output=True, text=True, env=env, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "grades.csv").open(encoding="utf-8") as file:
        return {(row["learner"], row["exercise"]): row for row in csv.DictReader(file)}


@pytest.mark.parametrize("name", list(CLASS))
def test_each_part_is_judged_on_its_own_values(rows: dict[tuple[str, str], dict[str, str]], name: str) -> None:
    expected = CLASS[name][1]
    assert (rows[name, "02"]["status"], rows[name, "02b"]["status"]) == expected, (rows[name, "02"], rows[name, "02b"])


def test_one_row_per_part_and_learner(rows: dict[tuple[str, str], dict[str, str]]) -> None:
    assert sorted(rows) == sorted((name, part) for name in CLASS for part in ("02", "02b"))


def test_a_later_part_that_hangs_names_its_own_cell(rows: dict[tuple[str, str], dict[str, str]]) -> None:
    assert f"did not finish within {TIMEOUT} s" in rows["a_then_hang", "02b"]["feedback"]
    assert "did not finish" not in rows["a_then_hang", "02"]["feedback"]


# -- where the grader's cells go (no kernel) -----------------------------------------------------------------


def graders_after(notebook: dict[str, Any]) -> dict[str, str]:
    """Each grader cell of the prepared notebook, and the first line of the learner's cell just above it."""
    reference = load_reference("02", EXERCISE)
    cells = prepare(nbformat.from_dict(copy.deepcopy(notebook)), reference).cells
    return {
        c.metadata["agentlab"]["grader"]: source_of(cells[i - 1]).splitlines()[0]
        for i, c in enumerate(cells)
        if c.metadata.get("agentlab")
    }


def check_cells(notebook: dict[str, Any]) -> dict[str, str]:
    """Each check cell's exercise and first line, as the course's notebook has them."""
    cells = [source_of(c) for c in notebook["cells"] if is_check_cell(c)]
    return {str(checked_exercise(source)): source.splitlines()[0] for source in cells}


def test_the_graders_cell_follows_each_check_cell() -> None:
    assert graders_after(load(EXERCISE)) == check_cells(load(EXERCISE))
    assert list(check_cells(load(EXERCISE))) == ["02", "02b"]


def test_a_deleted_check_cell_is_judged_after_the_cell_above_where_it_stood() -> None:
    notebook = load(EXERCISE)
    notebook["cells"] = [c for c in notebook["cells"] if not source_of(c).startswith('check("02"')]
    assert graders_after(notebook)["02"] == source_of(answers(load(EXERCISE))[0]).splitlines()[0]


def test_the_solution_with_other_cell_ids_is_matched_by_nbgraders_ids() -> None:
    solution = load(solution_of(EXERCISE))
    assert {c.get("id") for c in solution["cells"]} != {c.get("id") for c in load(EXERCISE)["cells"]}
    assert graders_after(solution) == check_cells(solution)
