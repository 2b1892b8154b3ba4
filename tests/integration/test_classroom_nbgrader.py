"""nbgrader: the exercise and solution notebooks carry nbgrader's cell metadata, checked by nbgrader itself.

nbgrader (in the test extra) validates the metadata with its own schema (version 3). The metadata is written
by scripts/nbgrader_metadata.py, which must leave everything else as it is and change nothing when run again.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator, ValidationError

from agentlab.exercises import check

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("nbgrader_metadata", ROOT / "scripts" / "nbgrader_metadata.py")
assert SPEC is not None and SPEC.loader is not None
script: Any = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(script)
PAIRS = script.pairs()
NOTEBOOKS = [path for _, exercise, solution in PAIRS for path in (exercise, solution)]
assert len(PAIRS) >= 6, "every lesson has an exercise"


def graded(path: Path) -> list[dict[str, Any]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [c["metadata"]["nbgrader"] for c in cells if "nbgrader" in c.get("metadata", {})]


def test_the_stored_metadata_is_what_the_script_writes() -> None:
    assert script.main(["--check"]) == 0, "run scripts/nbgrader_metadata.py (after scripts/build_notebooks.py)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_nbgraders_own_validator_accepts_the_notebook(path: Path) -> None:
    notebook = nbformat.read(str(path), as_version=4)
    MetadataValidator().validate_nb(notebook)  # raises nbgrader's ValidationError on any fault
    cells = graded(path)
    tests = [m for m in cells if m["grade"]]
    solutions = [m for m in cells if m["solution"]]
    checks = [
        c
        for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
        if script.source(c).lstrip().startswith("check(")
    ]
    assert len(tests) == len(checks) >= 1 and all(t["points"] > 0 and t["locked"] for t in tests), tests
    assert solutions and all(not m["grade"] and not m["locked"] for m in solutions), solutions
    assert len({m["grade_id"] for m in cells}) == len(cells), "grade ids are unique"


def test_exercise_and_solution_mark_the_same_cells() -> None:
    for _, exercise, solution in PAIRS:
        assert graded(exercise) == graded(solution), exercise.name


def test_the_validator_would_catch_a_test_cell_without_points() -> None:
    notebook = nbformat.read(str(PAIRS[0][1]), as_version=4)
    test_cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade"))
    del test_cell.metadata.nbgrader["points"]
    with pytest.raises(ValidationError, match="points"):
        MetadataValidator().validate_nb(notebook)


def without_nbgrader(notebook: dict[str, Any]) -> dict[str, Any]:
    bare = copy.deepcopy(notebook)
    for cell in bare["cells"]:
        cell["metadata"].pop("nbgrader", None)
    return bare


def test_the_script_changes_only_nbgrader_metadata_and_is_idempotent() -> None:
    for number, exercise, _ in PAIRS:
        notebook = json.loads(exercise.read_text(encoding="utf-8"))
        once = script.with_metadata(without_nbgrader(notebook), number, script.answer_ids(notebook))
        assert without_nbgrader(once) == without_nbgrader(notebook), exercise.name
        assert script.with_metadata(once, number, script.answer_ids(once)) == once, exercise.name


def test_under_nbgrader_a_failed_check_raises_so_the_test_cell_scores_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="exercise 01"):
        check("01", results=..., total=...)
    monkeypatch.delenv("NBGRADER_EXECUTION")
    assert not check("01", results=..., total=...).passed  # without nbgrader, a check never raises
