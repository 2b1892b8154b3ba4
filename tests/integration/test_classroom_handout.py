"""`python -m agentlab handout`: the lessons, the appendix and the exercises for learners; hints stay hints."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentlab.bench.grading import solution_answers
from agentlab.classroom.course import course_folder, exercise_notebooks, make_handout
from agentlab.classroom.notebook import answer_cells, checked_exercise, is_check_cell, source_of
from agentlab.errors import ConfigurationError

NOTEBOOKS = course_folder()

LESSONS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
APPENDIX = sorted(p.name for p in NOTEBOOKS.glob("A[0-9]*_*.ipynb"))
EXERCISES = sorted(p.name for p in (NOTEBOOKS / "exercises").glob("*.ipynb"))
SOLUTIONS = sorted(p.name for p in (NOTEBOOKS / "solutions").glob("*.ipynb"))


def names(paths: list[Path], out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in paths)


def test_the_learners_handout_has_no_solutions(tmp_path: Path) -> None:
    written = make_handout(tmp_path)
    expected = sorted([*LESSONS, *APPENDIX, *(f"exercises/{n}" for n in EXERCISES)])
    assert LESSONS and EXERCISES and names(written, tmp_path) == expected
    assert not (tmp_path / "solutions").exists()
    for name in LESSONS + APPENDIX:
        assert (tmp_path / name).read_bytes() == (NOTEBOOKS / name).read_bytes()
    for name in EXERCISES:
        cells = json.loads((tmp_path / "exercises" / name).read_text(encoding="utf-8"))["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), name


def test_the_teachers_handout_adds_the_solutions(tmp_path: Path) -> None:
    written = make_handout(tmp_path, with_solutions=True)
    assert [n for n in names(written, tmp_path) if n.startswith("solutions/")] == [f"solutions/{n}" for n in SOLUTIONS]


def test_the_command_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "agentlab", "handout", "--out", str(tmp_path / "class")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and f"copied {len(LESSONS) + len(APPENDIX) + len(EXERCISES)} notebooks" in done.stdout
    inside = subprocess.run([*command[:-1], str(NOTEBOOKS / "x")], capture_output=True, text=True, check=False)
    assert inside.returncode == 2 and "inside" in inside.stderr


def test_a_handout_never_goes_inside_the_course(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="inside"):
        make_handout(NOTEBOOKS / "handout")


# -- Hints stay hints ---------------------------------------------------------------------------------------


def answers_by_exercise(path: Path) -> dict[str, list[str]]:
    """Each exercise of the notebook and its solution's answer code (the answer cells before its check cell),
    line by line, without blank lines, comments, imports, prints, and the lines the exercise already gives."""
    exercise = json.loads(path.read_text(encoding="utf-8"))
    solution = json.loads((NOTEBOOKS / "solutions" / path.name.replace("_exercise", "_solution")).read_text())
    solved = dict(
        zip([id(c) for c in answer_cells(exercise["cells"])], solution_answers(exercise, solution), strict=True)
    )
    found: dict[str, list[str]] = {}
    pending: list[str] = []
    for cell in exercise["cells"]:
        pending += solved.get(id(cell), "").splitlines()
        if is_check_cell(cell):
            found[checked_exercise(source_of(cell)) or path.name[:2]] = pending
            pending = []
    given = {line.strip() for cell in exercise["cells"] for line in source_of(cell).splitlines()}
    skip = ("#", "import ", "from ", "print(")

    def keep(line: str) -> bool:
        return bool(line.strip()) and not line.strip().startswith(skip) and line.strip() not in given

    return {e: [x.split("  #")[0].strip() for x in lines if keep(x)] for e, lines in found.items()}


def squeeze(text: str) -> str:
    return re.sub(r"[\s`]", "", text)


def given_away(hint: str, lines: list[str]) -> list[str]:
    return [line for line in lines if squeeze(line) in squeeze(hint)]


CASES = sorted((e, path) for path in exercise_notebooks().values() for e in answers_by_exercise(path))


@pytest.mark.parametrize(("exercise", "path"), CASES, ids=[e for e, _ in CASES])
def test_hints_stay_hints(exercise: str, path: Path) -> None:
    hints = importlib.import_module(f"agentlab.exercises.ex{exercise}").HINTS
    lines = answers_by_exercise(path)[exercise]
    assert lines and hints, f"exercise {exercise} has an answer and hints"
    for number, hint in enumerate(hints, 1):
        assert len(given_away(hint, lines)) < len(lines), f"hint {number} of {exercise} is the whole answer: {hint}"
    together = {line for hint in hints for line in given_away(hint, lines)}
    assert len(together) < len(lines), f"the hints of {exercise} together spell out the whole answer"


def test_every_exercise_with_a_check_and_a_notebook_is_covered() -> None:
    assert {"01", "02", "02b", "03", "04", "05", "06"} <= {e for e, _ in CASES}


def test_the_hint_test_can_fail() -> None:
    lines = ["results = []", "total = time.perf_counter() - start"]
    assert given_away("`results = []`, then `total = time.perf_counter() - start`.", lines) == lines
