"""The course's own notebooks, which the grader trusts: which cells are answers, and how the check is called.

The exercise notebooks in ``notebooks/exercises/`` are the reference. An answer cell carries nbgrader's
``solution`` metadata (``scripts/nbgrader_metadata.py`` adds it) or, failing that, a ``TODO`` comment; the
check cell is the one that starts with ``check(``. A learner's copy of these cells is never trusted: the
grader only uses the reference to name a deleted answer cell and to call the check with the same arguments.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXERCISE_FILE = re.compile(r"^(\d{2}[a-z]?)_[^/]*\.ipynb$")  # 01_…, 02b_…


@dataclass(frozen=True)
class Reference:
    """What the grader knows about one exercise notebook of the course (``exercise`` is its file's number).

    A notebook may hold more than one exercise (``02`` and ``02b``): one check cell each, in ``checks``.
    """

    exercise: str
    file_name: str = ""
    answer_ids: tuple[str, ...] = ()
    checks: dict[str, dict[str, str]] = field(default_factory=dict)  # exercise -> check keyword -> expression

    @property
    def exercises(self) -> tuple[str, ...]:
        """The exercises this notebook is graded on, in the order of their check cells."""
        return tuple(self.checks) or (self.exercise,)

    def arguments(self, exercise: str) -> dict[str, str]:
        return self.checks.get(exercise, {})


def exercise_of(file_name: str) -> str | None:
    """``"01"`` for ``01_serial_baseline_exercise.ipynb``, ``"02b"`` for ``02b_…``; None for any other file."""
    match = EXERCISE_FILE.match(file_name)
    return match.group(1) if match else None


def reference_notebooks(folder: Path = NOTEBOOKS / "exercises") -> dict[str, Path]:
    """The course's exercise notebooks by exercise number (empty outside a checkout of the repository)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.ipynb")):
        if (exercise := exercise_of(path.name)) is not None:
            found.setdefault(exercise, path)
    return found


def load_reference(exercise: str, path: Path | None) -> Reference:
    """The answer cells and the check's arguments of one exercise; an empty Reference when there is no file."""
    if path is None or not path.exists():
        return Reference(exercise)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    answers = tuple(str(cell.get("id", "")) for cell in answer_cells(cells))
    checks = {}
    for cell in cells:
        if is_check_cell(cell):
            checks[checked_exercise(source_of(cell)) or exercise] = check_arguments(source_of(cell))
    return Reference(exercise, path.name, answers, checks)


def source_of(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def is_check_cell(cell: dict[str, Any]) -> bool:
    return cell.get("cell_type") == "code" and source_of(cell).lstrip().startswith("check(")


def answer_cells(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells a learner fills in: the code cells with a TODO, and those nbgrader marks as solution cells."""
    code = [cell for cell in cells if cell.get("cell_type") == "code"]
    return [c for c in code if c.get("metadata", {}).get("nbgrader", {}).get("solution") or "TODO" in source_of(c)]


def check_call(source: str) -> ast.Call | None:
    """The ``check(...)`` call in a cell's source, if it parses."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name))
    return next((call for call in calls if isinstance(call.func, ast.Name) and call.func.id == "check"), None)


def checked_exercise(source: str) -> str | None:
    """``"02b"`` for a cell ``check("02b", ...)``."""
    call = check_call(source)
    if call and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value.strip().zfill(2)
    return None


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


def check_arguments(source: str) -> dict[str, str]:
    """The keyword arguments of the ``check(...)`` call in a cell, as source text (``{"total": "total"}``)."""
    call = check_call(source)
    if call is None:
        return {}
    return {k.arg: ast.get_source_segment(source, k.value) or k.arg for k in call.keywords if k.arg is not None}
