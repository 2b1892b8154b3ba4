"""The lessons as documents: structure, stored outputs, strictness of the nbval comparison, no secrets.

These tests only read the notebooks' JSON, so they are fast. nbval (the README test line) re-runs every lesson
and solution and compares the outputs; tests/test_exercises.py runs the exercise/solution pairs.
They loop over every notebook present, so a new lesson is covered as soon as it lands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
APPENDICES = sorted(NOTEBOOKS.glob("A[0-9]_*.ipynb"))
EXERCISES = sorted((NOTEBOOKS / "exercises").glob("*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
EVERY = LESSONS + APPENDICES + EXERCISES + SOLUTIONS
RUN = LESSONS + APPENDICES + SOLUTIONS  # what nbval runs and compares
KEY = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
IGNORED = ("nbval-ignore-output", "nbval-skip")  # nbval's cell tags; never comments in the code a learner reads
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def load(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def cells(path: Path) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load(path)["cells"]
    return result


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def code(path: Path) -> list[dict[str, Any]]:
    return [c for c in cells(path) if c["cell_type"] == "code"]


def markdown(path: Path) -> str:
    return "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_notebooks_are_there() -> None:
    assert LESSONS, "no lessons in notebooks/"
    assert [p.name[:2] for p in LESSONS] == [f"{i:02d}" for i in range(1, len(LESSONS) + 1)], "numbered 01, 02, …"


@pytest.mark.parametrize("lesson", LESSONS, ids=ids(LESSONS))
def test_each_lesson_has_an_exercise_and_a_solution(lesson: Path) -> None:
    assert (NOTEBOOKS / "exercises" / f"{lesson.stem}_exercise.ipynb").exists()
    assert (NOTEBOOKS / "solutions" / f"{lesson.stem}_solution.ipynb").exists()


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids(EXERCISES))
def test_each_exercise_belongs_to_a_lesson_and_has_a_solution(exercise: Path) -> None:
    stem = exercise.stem.removesuffix("_exercise")
    assert exercise.stem.endswith("_exercise")
    assert (NOTEBOOKS / f"{stem}.ipynb").exists(), f"no lesson for {exercise.name}"
    assert (NOTEBOOKS / "solutions" / f"{stem}_solution.ipynb").exists(), f"no solution for {exercise.name}"


@pytest.mark.parametrize("lesson", LESSONS, ids=ids(LESSONS))
def test_lesson_structure(lesson: Path) -> None:
    text = markdown(lesson)
    assert text.lstrip().startswith("# "), "a lesson starts with its title"
    assert "What you will learn" in text
    assert re.search(r"^#+ Recap", text, re.M), "a lesson ends with a Recap section"
    links = re.findall(r"\]\((exercises/[^)]+\.ipynb)\)", text)
    assert f"exercises/{lesson.stem}_exercise.ipynb" in links, "a lesson links to its own exercise"
    assert all((NOTEBOOKS / link).exists() for link in links)


@pytest.mark.parametrize("lesson", LESSONS, ids=ids(LESSONS))
def test_lesson_states_its_claim_as_an_assert_introduced_in_prose(lesson: Path) -> None:
    all_cells = cells(lesson)
    claims = [
        i for i, c in enumerate(all_cells) if c["cell_type"] == "code" and re.search(r"^assert ", source(c), re.M)
    ]
    assert claims, "a lesson states its claim in an assert cell"
    introduced = [
        i for i in claims if all_cells[i - 1]["cell_type"] == "markdown" and "claim" in source(all_cells[i - 1]).lower()
    ]
    assert introduced, "the assert cell follows a markdown cell that announces the claim"


@pytest.mark.parametrize("notebook", EVERY, ids=ids(EVERY))
def test_no_asyncio_run_outside_the_appendix(notebook: Path) -> None:
    if notebook.name.startswith("A1_notebooks_and_scripts."):
        return  # the appendix shows why asyncio.run fails in a notebook (and the legacy workaround)
    assert not [source(c) for c in code(notebook) if "asyncio.run(" in source(c)]


def test_the_appendix_is_a_short_lesson_linked_from_02() -> None:
    [appendix] = [p for p in APPENDICES if p.name == "A1_notebooks_and_scripts.ipynb"]
    text = markdown(appendix)
    assert text.lstrip().startswith("# ") and "What you will learn" in text and re.search(r"^#+ Recap", text, re.M)
    assert "(02_concurrent_gather.ipynb)" in text, "the appendix links back to lesson 02"
    assert "(A1_notebooks_and_scripts.ipynb)" in markdown(NOTEBOOKS / "02_concurrent_gather.ipynb")
    assert any("run_sync" in source(c) for c in code(appendix)) and any(
        re.search(r"^assert ", source(c), re.M) for c in code(appendix)
    )
    assert len(cells(NOTEBOOKS / "02_concurrent_gather.ipynb")) <= 33, "lesson 02 stays on the source lesson's path"


@pytest.mark.parametrize("notebook", EVERY, ids=ids(EVERY))
def test_no_test_plumbing_in_cells_a_learner_reads(notebook: Path) -> None:
    for cell in code(notebook):
        text = source(cell)
        assert "NBVAL" not in text, "nbval directives are cell tags (nbval-ignore-output), not comments"
        assert not re.search(r"\bscale\b|SCALE|AGENTLAB_TIME_SCALE", text), f"scale arithmetic in a cell:\n{text}"
    prose = markdown(notebook)
    assert not re.search(r"test suite|\bCI\b|nbval|pytest", prose), "test-suite and CI notes belong in contributor docs"


@pytest.mark.parametrize("notebook", EVERY, ids=ids(EVERY))
def test_notebook_metadata_names_the_python3_kernel(notebook: Path) -> None:
    spec = load(notebook)["metadata"]["kernelspec"]
    assert {k: spec.get(k) for k in KERNEL} == KERNEL


@pytest.mark.parametrize("notebook", RUN, ids=ids(RUN))
def test_outputs_are_stored_and_mostly_compared(notebook: Path) -> None:
    with_outputs = [c for c in code(notebook) if c["outputs"]]
    assert with_outputs, "build the outputs with scripts/build_notebooks.py"
    compared = [c for c in with_outputs if compared_strictly(c)]
    assert len(compared) >= len(with_outputs) / 2, "at least half of the cells with outputs are compared by nbval"


def test_at_least_half_of_the_cells_with_text_are_compared_strictly() -> None:
    with_text = [c for path in RUN for c in code(path) if c["outputs"] and has_text(c)]
    assert len([c for c in with_text if compared_strictly(c)]) >= len(with_text) / 2


def compared_strictly(cell: dict[str, Any]) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return has_text(cell) and not any(tag in tags for tag in IGNORED)


def has_text(cell: dict[str, Any]) -> bool:
    """Whether nbval compares something real in this cell: printed text, or a value that is not a picture.

    nbval skips images, so a cell whose only output is a chart compares no more than "<Chart size ...>".
    """
    return any(
        output["output_type"] == "stream" or (output.get("data") and "image/png" not in output["data"])
        for output in cell["outputs"]
    )


@pytest.mark.parametrize("notebook", EVERY, ids=ids(EVERY))
def test_no_error_and_no_stderr_in_stored_outputs(notebook: Path) -> None:
    for cell in code(notebook):
        for output in cell["outputs"]:
            assert output["output_type"] != "error", source(cell)
            assert not (output["output_type"] == "stream" and output["name"] == "stderr"), source(cell)


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids(EXERCISES))
def test_exercises_are_stored_empty_with_todo_check_and_hints(exercise: Path) -> None:
    cells_ = code(exercise)
    assert all(not c["outputs"] and c.get("execution_count") is None for c in cells_), "clear the exercise"
    assert any("TODO" in source(c) for c in cells_)
    assert any(source(c).lstrip().startswith("check(") for c in cells_), "a cell that starts with check(...)"
    assert any(source(c).lstrip().startswith("hints(") for c in cells_), "a cell that starts with hints(...)"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_solutions_match_their_exercise(solution: Path) -> None:
    exercise = NOTEBOOKS / "exercises" / solution.name.replace("_solution", "_exercise")
    assert exercise.exists(), f"no exercise for {solution.name}"
    assert not any("TODO" in source(c) for c in code(solution)), "a solution has no TODO left"
    checks = [source(c).strip() for c in code(solution) if source(c).lstrip().startswith("check(")]
    assert checks == [source(c).strip() for c in code(exercise) if source(c).lstrip().startswith("check(")]


def test_no_notebook_holds_a_key() -> None:
    for path in EVERY:
        assert not KEY.search(path.read_text(encoding="utf-8")), path


def test_nest_asyncio_appears_in_exactly_one_code_cell_of_the_appendix() -> None:
    hits = [(p.name, i) for p in EVERY for i, c in enumerate(code(p)) if "nest_asyncio" in source(c)]
    assert len(hits) == 1, f"nest_asyncio must appear once, in one cell labelled as legacy: {hits}"
    name, index = hits[0]
    assert name == "A1_notebooks_and_scripts.ipynb"
    assert "legacy" in source(code(NOTEBOOKS / name)[index]).lower()
