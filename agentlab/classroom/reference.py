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
    """What the grader knows about one exercise from the course's own exercise notebook."""

    exercise: str
    file_name: str = ""
    answer_ids: tuple[str, ...] = ()
    arguments: dict[str, str] = field(default_factory=dict)  # check's keyword -> the expression the cell passes


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
    checks = [source_of(cell) for cell in cells if is_check_cell(cell)]
    return Reference(exercise, path.name, answers, check_arguments(checks[0]) if checks else {})


def source_of(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def is_check_cell(cell: dict[str, Any]) -> bool:
    return cell.get("cell_type") == "code" and source_of(cell).lstrip().startswith("check(")


def answer_cells(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells a learner fills in: nbgrader solution cells, or else the code cells with a TODO."""
    code = [cell for cell in cells if cell.get("cell_type") == "code"]
    marked = [cell for cell in code if cell.get("metadata", {}).get("nbgrader", {}).get("solution")]
    return marked or [cell for cell in code if "TODO" in source_of(cell)]


def check_arguments(source: str) -> dict[str, str]:
    """The keyword arguments of the ``check(...)`` call in a cell, as source text (``{"total": "total"}``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check":
            return {
                keyword.arg: ast.get_source_segment(source, keyword.value) or keyword.arg
                for keyword in node.keywords
                if keyword.arg is not None
            }
    return {}
