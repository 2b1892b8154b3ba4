"""Give the exercise and solution notebooks nbgrader's cell metadata, so a teacher on nbgrader can use them.

    python scripts/nbgrader_metadata.py            # write the metadata (idempotent)
    python scripts/nbgrader_metadata.py --check    # exit 1 and name the notebooks whose metadata is stale

In each pair, the answer cell (the exercise's code cell with a TODO; the solution's cell of the same id, or in
the same place) is a solution cell, and each ``check(...)`` cell is an autograded test worth POINTS, locked so
learners cannot edit it (format: nbgrader's cell metadata schema, version 3). Only cell metadata changes:
sources and outputs are never touched, and the JSON is written the way nbformat writes it. Run it after
scripts/build_notebooks.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
POINTS = 1
SCHEMA_VERSION = 3


def source(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def answer_ids(exercise: dict[str, Any]) -> list[str]:
    """The exercise's answer cells: the code cells with a TODO, and those nbgrader already marks as solutions."""
    code = [c for c in exercise["cells"] if c["cell_type"] == "code"]
    marked = [c for c in code if c.get("metadata", {}).get("nbgrader", {}).get("solution") or "TODO" in source(c)]
    return [str(c.get("id")) for c in marked]


def checked(cell: dict[str, Any], number: str) -> str:
    """The exercise a check cell checks: ``02b`` for ``check("02b", ...)`` (a notebook may hold two)."""
    match = re.match(r"""check\(\s*["']([0-9a-z]+)["']""", source(cell).lstrip())
    return match.group(1) if match else number


def metadata_for(cell: dict[str, Any], number: str, answers: list[str]) -> dict[str, Any] | None:
    """The nbgrader metadata a cell should carry, or None for a cell nbgrader leaves alone."""
    if cell["cell_type"] == "code" and source(cell).lstrip().startswith("check("):
        return {
            "grade": True,
            "grade_id": f"ex{checked(cell, number)}-check",
            "locked": True,
            "points": POINTS,
            "schema_version": SCHEMA_VERSION,
            "solution": False,
        }
    if cell["cell_type"] == "code" and str(cell.get("id")) in answers:
        index = answers.index(str(cell.get("id"))) + 1
        return {
            "grade": False,
            "grade_id": f"ex{number}-answer-{index}",
            "locked": False,
            "schema_version": SCHEMA_VERSION,
            "solution": True,
        }
    return None


def with_metadata(notebook: dict[str, Any], number: str, answers: list[str]) -> dict[str, Any]:
    """A copy of the notebook whose cells carry exactly the nbgrader metadata they should."""
    copy: dict[str, Any] = json.loads(json.dumps(notebook))
    for cell in copy["cells"]:
        metadata = cell.setdefault("metadata", {})
        wanted = metadata_for(cell, number, answers)
        if wanted is None:
            metadata.pop("nbgrader", None)
        else:
            metadata["nbgrader"] = wanted
    return copy


def pairs() -> list[tuple[str, Path, Path]]:
    found = []
    for exercise in sorted((NOTEBOOKS / "exercises").glob("[0-9][0-9]_*_exercise.ipynb")):
        solution = NOTEBOOKS / "solutions" / exercise.name.replace("_exercise", "_solution")
        found.append((exercise.name[:2], exercise, solution))
    return found


def dumps(notebook: dict[str, Any]) -> str:
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as nbformat writes


def solution_ids(exercise: dict[str, Any], solution: dict[str, Any], answers: list[str]) -> list[str]:
    """The solution's answer cells: the same ids, or else the same places among the code cells, from the top."""
    ids = {str(c.get("id")) for c in solution["cells"]}
    if all(answer in ids for answer in answers):
        return answers
    code = [str(c.get("id")) for c in exercise["cells"] if c["cell_type"] == "code"]
    solved = [c for c in solution["cells"] if c["cell_type"] == "code"]
    places = [code.index(a) for a in answers]
    if any(p >= len(solved) or source(solved[p]).lstrip().startswith("check(") for p in places):
        return []
    return [str(solved[p].get("id")) for p in places]


def updated() -> dict[Path, str]:
    """Every notebook's text with the metadata, by path (the same text when nothing changes)."""
    texts = {}
    for number, exercise_path, solution_path in pairs():
        exercise = json.loads(exercise_path.read_text(encoding="utf-8"))
        answers = answer_ids(exercise)
        texts[exercise_path] = dumps(with_metadata(exercise, number, answers))
        if solution_path.exists():
            solution = json.loads(solution_path.read_text(encoding="utf-8"))
            solved = solution_ids(exercise, solution, answers)
            texts[solution_path] = dumps(with_metadata(solution, number, solved))
    return texts


def main(argv: list[str]) -> int:
    stale = [path for path, text in updated().items() if path.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"stale nbgrader metadata: {path.relative_to(ROOT)} (run scripts/nbgrader_metadata.py)")
        return 1 if stale else 0
    for path, text in updated().items():
        if path in stale:
            path.write_text(text, encoding="utf-8")
            print(f"nbgrader metadata: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
