"""The course's exercise notebook, which the grader trusts, and a learner's copy of it, which it does not.

The reference says which cells are answers (nbgrader's ``solution`` metadata, or a ``TODO``) and where each
check cell (``check(…``) stands. ``prepare`` drops the learner's stored outputs (never read) and puts the
grader's own judgement right after where each check stands in the learner's copy, so that each check sees the
values of that moment (part a's ``results``, not part b's).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from agentlab.classroom.answers import check_parameters


@dataclass(frozen=True)
class Check:
    """One check cell of the reference: its exercise (``02b``), its place, and the arguments it passes."""

    exercise: str
    arguments: dict[str, str]  # check keyword -> expression, as source text
    cell_id: str = ""
    grade_id: str = ""  # nbgrader's, e.g. "ex02b-check"
    before: tuple[str, ...] = ()  # the ids of the cells above it, nearest first: where it goes if deleted


@dataclass(frozen=True)
class Reference:
    """One exercise notebook of the course (``exercise``: its file's number), with a Check per check cell."""

    exercise: str
    file_name: str = ""
    answer_ids: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    cell_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def exercises(self) -> tuple[str, ...]:
        """The exercises this notebook is graded on, in the order of their check cells."""
        return tuple(c.exercise for c in self.checks) or (self.exercise,)


@dataclass(frozen=True)
class Submission:
    """One learner's file for one exercise, or None, with the ``problem`` when it is not simply missing."""

    learner: str
    exercise: str
    path: Path | None
    problem: str = ""


class BadSubmission(Exception):
    """The file cannot be graded; the message says why, in the learner's terms."""


def load_reference(exercise: str, path: Path | None) -> Reference:
    """The answer cells and the checks of one exercise notebook; an empty Reference when there is no file."""
    if path is None or not path.exists():
        return Reference(exercise)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    answers = tuple(str(cell.get("id", "")) for cell in answer_cells(cells))
    checks = []
    for index, cell in enumerate(cells):
        if is_check_cell(cell):
            before = tuple(str(c.get("id", "")) for c in reversed(cells[:index]) if c.get("id"))
            arguments = check_arguments(source_of(cell))
            checked = checked_exercise(source_of(cell)) or exercise
            checks.append(Check(checked, arguments, str(cell.get("id", "")), grade_id(cell), before))
    ids = frozenset(str(cell["id"]) for cell in cells if cell.get("id"))
    return Reference(exercise, path.name, answers, tuple(checks), ids)


def source_of(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def grade_id(cell: Any) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


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


def check_arguments(source: str) -> dict[str, str]:
    """The keyword arguments of the ``check(...)`` call in a cell, as source text (``{"total": "total"}``)."""
    call = check_call(source)
    if call is None:
        return {}
    return {k.arg: ast.get_source_segment(source, k.value) or k.arg for k in call.keywords if k.arg is not None}


def read_submission(path: Path, reference: Reference | None = None) -> nbformat.NotebookNode:
    """The learner's notebook, or BadSubmission naming why it is not one (or not the reference's)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSubmission(
            f"the file cannot be read as text ({type(exc).__name__}): hand in the .ipynb file"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadSubmission(f"not a notebook: the file is not valid JSON ({exc})") from None
    try:
        if not isinstance(data, dict) or data.get("nbformat") != 4:
            raise ValueError("it is not a version 4 notebook")
        notebook: nbformat.NotebookNode = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
        nbformat.validate(notebook)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadSubmission(f"not a notebook: the JSON is not a Jupyter notebook ({reason:.120})") from None
    if reference is not None and of_another_course(notebook, reference):
        raise BadSubmission(
            f"not this course's exercise {reference.exercise}: no cell of it comes from {reference.file_name} "
            "(a notebook of another course?): hand in the notebook from `python -m agentlab handout`"
        )
    return notebook


def of_another_course(notebook: nbformat.NotebookNode, reference: Reference) -> bool:
    """True when no cell id, nbgrader id or check call of the notebook is the reference's (if it has checks)."""
    if not reference.checks:
        return False
    ids = {str(cell.get("id", "")) for cell in notebook.cells} | {grade_id(cell) for cell in notebook.cells}
    known = reference.cell_ids | {c.grade_id for c in reference.checks if c.grade_id}
    checked = {checked_exercise(source_of(cell)) for cell in notebook.cells if cell.cell_type == "code"}
    return not (ids & known) and not (checked & set(reference.exercises))


def answer_notes(notebook: nbformat.NotebookNode, reference: Reference) -> list[str]:
    """One note per answer cell of the reference that the learner deleted or emptied."""
    cells = {str(cell.get("id", "")): cell for cell in notebook.cells}
    by_grade_id = {grade_id(cell): cell for cell in notebook.cells if grade_id(cell)}
    notes = []
    for index, answer_id in enumerate(reference.answer_ids, 1):
        cell = cells.get(answer_id) or by_grade_id.get(f"ex{reference.exercise}-answer-{index}")
        if cell is None:
            notes.append(f"the answer cell ({answer_id}) was deleted from the notebook")
        elif not meaningful(source_of(cell)):
            notes.append(f"the answer cell ({answer_id}) is empty")
    return notes


def meaningful(source: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in source.splitlines())


def prepare(notebook: nbformat.NotebookNode, reference: Reference) -> nbformat.NotebookNode:
    """A copy without the learner's outputs, with the grader's judgement of each check where it stands."""
    copy: nbformat.NotebookNode = nbformat.from_dict(json.loads(json.dumps(notebook)))  # type: ignore[no-untyped-call]
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    checks = reference.checks or (Check(reference.exercise, {}),)
    places = [(check_place(copy.cells, check), order, check) for order, check in enumerate(checks)]
    # from the bottom up, so that each place still counts the learner's cells; of two checks at one place, the
    # later goes in first and so ends up below the earlier
    for place, _, check in sorted(places, key=lambda found: (-found[0], -found[1])):
        copy.cells.insert(place + 1, grader_cell(check, copy))
    return copy


def check_place(cells: list[Any], check: Check) -> int:
    """The learner's cell after which ``check`` is judged: their check cell (by id, nbgrader id or its call),
    else the nearest course cell above where it stood, else the last cell."""
    for matches in (
        lambda cell: check.cell_id and cell.get("id") == check.cell_id,
        lambda cell: check.grade_id and grade_id(cell) == check.grade_id,
        lambda cell: cell.cell_type == "code" and checked_exercise(source_of(cell)) == check.exercise,
    ):
        found = [index for index, cell in enumerate(cells) if matches(cell)]
        if found:
            return found[0]
    where = {str(cell.get("id", "")): index for index, cell in enumerate(cells)}
    return next((where[above] for above in check.before if above in where), len(cells) - 1)


def grader_cell(check: Check, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell: nbformat.NotebookNode = nbformat.v4.new_code_cell(grader_source(check))  # type: ignore[no-untyped-call]
    cell.metadata["agentlab"] = {"grader": check.exercise}
    if notebook.get("nbformat_minor", 0) < 5:  # cell ids came with nbformat 4.5
        cell.pop("id", None)
    return cell


def grader_source(check: Check) -> str:
    """Show the answers that the check takes, as they are here, for the grader to judge. An import statement
    finds ``__import__`` among the builtins, not in the learner's globals."""
    try:
        names = check_parameters(check.exercise)
    except ModuleNotFoundError:  # no check for this exercise: the verdict says so
        names = []
    return (
        "# added by the grader: your answers, as they are here, for the grader's own check\n"
        "import agentlab.classroom.answers as agentlab_grader\n"
        f"agentlab_grader.answers({check.exercise!r}, globals(), {check.arguments!r}, {names!r})"
    )
