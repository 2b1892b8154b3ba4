"""`python -m agentlab grade`: a real class of edited exercise notebooks, graded end to end.

The class (tests/classroom_class.py) is made from the real exercise 01: the solution's answer, a wrong answer,
and every bad case the issue names. The grader runs as a teacher runs it, in its own process, at a small time
scale with two notebooks at once, and every row of grades.csv is asserted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from classroom_class import ANSWER_CELL, COPY, EXERCISE, LEARNERS, make_class, survivors

from agentlab.classroom.course import course_folder
from agentlab.classroom.grade import discover, grade_command
from agentlab.classroom.notebook import load_reference

NOTEBOOKS = course_folder()

TIMEOUT = 15  # seconds of cell time per notebook: dave's endless loop is stopped after this
pytestmark = pytest.mark.timeout(600)


def grade(submissions: Path, out: Path, *extra: str, mark: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_TEST_RUN": mark or uuid.uuid4().hex}
    command = [sys.executable, "-m", "agentlab", "grade", str(submissions), "--out", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=500, check=False)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def graded(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]]:
    root = make_class(tmp_path_factory.mktemp("class"))
    before = digests(root)
    out = tmp_path_factory.mktemp("report")
    done = grade(root, out, "--jobs", "2", "--timeout", str(TIMEOUT), "--exercises", "01", mark=MARK)
    LEFT.extend(survivors(MARK, time.monotonic()))  # looked at right away: the test below reads it
    return root, out, done, before


MARK = uuid.uuid4().hex  # in the environment of the class's grade command, so of every process it starts
LEFT: list[str] = []  # the processes it started that were still alive 2 s after it returned


def test_no_process_outlives_grade(
    graded: tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]],
) -> None:
    """Eight kernels ran (one timed out, one died): none of them, nor the zygote, is left."""
    assert graded[2].returncode == 0, graded[2].stderr[-3000:]
    assert LEFT == [], f"alive 2 s after grade returned: {LEFT}"


@pytest.fixture(scope="module")
def rows(graded: tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]]) -> dict[str, dict[str, str]]:
    _, out, done, _ = graded
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "grades.csv").open(encoding="utf-8") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["learner", "exercise", "status", "seconds", "feedback"]
        return {row["learner"]: row for row in reader}


EXPECTED = {  # learner: (status, a pattern the feedback must match)
    "alice": ("passed", r"\d"),
    "bob": ("failed", r"100(\.0+)? s"),
    "carol": ("error", rf"cell {ANSWER_CELL} \(`raise RuntimeError\(\"I give up\"\)`\) raised RuntimeError: I give up"),
    "dave": ("timeout", rf"cell {ANSWER_CELL} \(`import time`\) did not finish within {TIMEOUT} s"),
    "erin": ("error", rf"the kernel died while running cell {ANSWER_CELL} \(`import os`\)"),
    "frank": ("error", r"^the answer cell \([^)]+\) was deleted from the notebook \| .*NameError"),
    "grace": ("error", r"^the answer cell \([^)]+\) is empty \| .*NameError"),
    "heidi": ("error", r"^not a notebook: the file is not valid JSON"),
    "ivan": ("error", r"^not a notebook: the JSON is not a Jupyter notebook"),
    "judy": ("missing", r"^not handed in"),
    "mallory": ("failed", r"`results`"),
    "oscar": ("error", r"^not this course's exercise 01: no cell of it comes from 01_serial_baseline_exercise"),
    "peggy": ("error", rf"^two files for exercise 01: ({re.escape(COPY)}|{EXERCISE.stem}\.ipynb) and \S+; keep one$"),
}


def test_the_class_covers_every_case() -> None:
    assert [name for name, _, _ in LEARNERS] == list(EXPECTED)


@pytest.mark.parametrize("learner", list(EXPECTED))
def test_every_row_of_grades_csv(rows: dict[str, dict[str, str]], learner: str) -> None:
    row = rows[learner]
    status, pattern = EXPECTED[learner]
    assert (row["exercise"], row["status"]) == ("01", status), row
    assert re.search(pattern, row["feedback"]), row["feedback"]
    ran = status not in ("missing",) and learner not in ("heidi", "ivan", "oscar", "peggy")
    assert (float(row["seconds"]) > 0) if ran else row["seconds"] == "", row


def test_one_row_per_learner_and_nothing_else(rows: dict[str, dict[str, str]]) -> None:
    assert sorted(rows) == sorted(EXPECTED)


def test_a_forged_verdict_and_a_redefined_check_are_ignored(rows: dict[str, dict[str, str]]) -> None:
    assert "forged" not in rows["mallory"]["feedback"]


def test_the_learners_files_are_never_modified(
    graded: tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]],
) -> None:
    root, _, _, before = graded
    assert digests(root) == before


def test_the_executed_copies_hold_the_graders_cell(
    graded: tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]], rows: dict[str, dict[str, str]]
) -> None:
    _, out, _, _ = graded
    executed = sorted(p.parent.name for p in (out / "executed").glob("*/*.ipynb"))
    assert executed == ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "mallory"]
    text = (out / "executed" / "alice" / EXERCISE.name).read_text(encoding="utf-8")
    assert "agentlab.classroom.answers" in text and "application/vnd.agentlab.check+json" in text


def test_the_report_page_has_the_table_and_the_summary(
    graded: tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]], rows: dict[str, dict[str, str]]
) -> None:
    _, out, done, _ = graded
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<img" not in page and "src=" not in page  # the page travels alone
    assert all(f"<th>{name}</th>" in page for name in EXPECTED)
    assert "<th>01</th><td>8%<div class='bar' style='width:8%'>" in page  # 1 of 13 passed
    assert "1/13 passed" in done.stdout


def test_the_gradebook_has_a_row_per_learner_and_a_column_per_check(
    graded: tuple[Path, Path, subprocess.CompletedProcess[str], dict[str, str]], rows: dict[str, dict[str, str]]
) -> None:
    with (graded[1] / "gradebook.csv").open(encoding="utf-8", newline="") as file:
        book = list(csv.reader(file))
    assert book[0] == ["learner", "ex01", "total"]
    assert book[1:] == [[name, *(["1", "1"] if name == "alice" else ["0", "0"])] for name in sorted(EXPECTED)]


def test_nbgraders_submitted_folder_is_the_class(tmp_path: Path) -> None:
    (tmp_path / "submitted" / "zoe" / "ps1").mkdir(parents=True)
    (tmp_path / "submitted" / "zoe" / "ps1" / EXERCISE.name).write_text("{}")
    (tmp_path / "submitted" / "yann").mkdir()
    found = [(s.learner, s.exercise, s.path) for s in discover(tmp_path)]
    assert found == [("yann", "01", None), ("zoe", "01", tmp_path / "submitted" / "zoe" / "ps1" / EXERCISE.name)]


def test_no_such_folder_is_a_clear_error_and_exit_status_2(tmp_path: Path) -> None:
    done = grade(tmp_path / "nope", tmp_path / "report")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "is not a folder" in done.stderr
    assert not (tmp_path / "report").exists()


REFUSED = {  # case: what the one-line error says
    "no learners": "no learner folders",
    "no exercises": "no exercise notebooks",
    "bad number": "--timeout",
    "out inside the submissions": "is inside the submissions",
    "out inside the course": "is inside the course's notebooks",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_grader_fails_clearly_only_when_it_cannot_run(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "class").mkdir()
    if case != "no learners":
        (tmp_path / "class" / "zoe").mkdir()
        (tmp_path / "class" / "zoe" / "notes.txt").write_text("hello")
    out = {
        "out inside the submissions": tmp_path / "class" / "report",
        "out inside the course": NOTEBOOKS / "exercises" / "report",
    }.get(case, tmp_path / "report")
    args = argparse.Namespace(
        submissions=tmp_path / "class",
        out=out,
        jobs=2,
        timeout=0.0 if case == "bad number" else 120.0,
        time_scale=0.05,
        exercises="",
        no_fork=False,
    )
    assert grade_command(args) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and message.count("\n") == 1 and REFUSED[case] in message, message
    assert not out.exists()


def test_without_the_zygote_every_kernel_starts_from_scratch(tmp_path: Path) -> None:
    make_class(tmp_path / "class", [LEARNERS[0]])
    done = grade(tmp_path / "class", tmp_path / "report", "--no-fork", "--timeout", str(TIMEOUT))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = (tmp_path / "report" / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("alice,01,passed,"), rows


def test_a_notebook_with_two_checks_gives_two_rows(tmp_path: Path) -> None:
    exercise = next((NOTEBOOKS / "exercises").glob("02_*_exercise.ipynb"))
    solution = NOTEBOOKS / "solutions" / exercise.name.replace("_exercise", "_solution")
    (tmp_path / "class" / "zoe").mkdir(parents=True)
    (tmp_path / "class" / "zoe" / exercise.name).write_bytes(solution.read_bytes())
    checks = load_reference("02", exercise).exercises
    assert len(checks) >= 1 and checks[0] == "02"
    done = grade(tmp_path / "class", tmp_path / "report", "--timeout", str(TIMEOUT))
    assert done.returncode == 0, done.stderr[-3000:]
    with (tmp_path / "report" / "grades.csv").open(encoding="utf-8") as file:
        rows = [(r["learner"], r["exercise"], r["status"]) for r in csv.DictReader(file)]
    assert rows == [("zoe", check, "passed") for check in checks], rows
