"""A learner's notebook, read without trusting it, and the grader's own last cell appended to a copy.

Reading names the cause of a bad file (not JSON, not a notebook); ``answer_notes`` names a deleted or emptied
answer cell; ``prepare`` drops the learner's stored outputs (never read) and appends the grader's cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from agentlab.classroom.reference import Reference, source_of

GRADER_CELL_ID = "agentlab-grader"


class BadSubmission(Exception):
    """The file cannot be graded; the message says why, in the learner's terms."""


def read_submission(path: Path) -> nbformat.NotebookNode:
    """The learner's notebook, or BadSubmission naming why it is not one."""
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
    return notebook


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


def grade_id(cell: Any) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


def meaningful(source: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in source.splitlines())


def prepare(notebook: nbformat.NotebookNode, reference: Reference) -> nbformat.NotebookNode:
    """A copy without the learner's outputs, with the grader's check cell last."""
    copy: nbformat.NotebookNode = nbformat.from_dict(json.loads(json.dumps(notebook)))  # type: ignore[no-untyped-call]
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for exercise in reference.exercises:  # one grader cell per exercise of the notebook, last
        cell = nbformat.v4.new_code_cell(grader_source(exercise, reference.arguments(exercise)))  # type: ignore[no-untyped-call]
        cell.metadata["agentlab"] = {"grader": exercise}
        if copy.get("nbformat_minor", 0) >= 5:
            cell["id"] = f"{GRADER_CELL_ID}-{exercise}"
        else:
            cell.pop("id", None)
        copy.cells.append(cell)
    return copy


def grader_source(exercise: str, arguments: dict[str, str]) -> str:
    """One expression: reload the grader's kernel module and show its fresh verdict."""
    return (
        "# added by the grader: a fresh check on your variables\n"
        '__import__("importlib").reload(__import__("agentlab.classroom.kernel", fromlist=["judge"])).judge(\n'
        f"    {exercise!r}, globals(), {arguments!r}\n"
        ")"
    )
