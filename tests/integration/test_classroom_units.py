"""The grader's parts that need no kernel: reading a bad file, the check's arguments, the report's summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
from IPython.core.formatters import DisplayFormatter

from agentlab.classroom.answers import answers, check_parameters, load_answers
from agentlab.classroom.course import exercise_notebooks, exercise_of
from agentlab.classroom.execute import Grade
from agentlab.classroom.grade import discover
from agentlab.classroom.notebook import BadSubmission, check_arguments, load_reference, read_submission
from agentlab.classroom.report import blur, common_feedback, pass_rates, render_html, write_gradebook, write_grades
from agentlab.errors import ConfigurationError
from agentlab.exercises import CHECK_MIME, check


def test_check_shows_a_machine_verdict_beside_the_html() -> None:
    data, _ = DisplayFormatter().format(check("01", results=..., total=...))
    assert {"text/html", "text/plain", CHECK_MIME} <= set(data)
    verdict = data[CHECK_MIME]
    assert verdict["exercise"] == "01" and verdict["passed"] is False and verdict["messages"]
    assert json.loads(json.dumps(verdict)) == verdict


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("my essay", "not valid JSON"),
        ("[1, 2]", "not a Jupyter notebook"),
        ('{"nbformat": 4, "cells": "none"}', "not a Jupyter notebook"),
        ('{"nbformat": 3, "worksheets": []}', "not a version 4 notebook"),
    ],
)
def test_a_bad_file_is_named(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "01_x_exercise.ipynb"
    path.write_text(text)
    with pytest.raises(BadSubmission, match=reason):
        read_submission(path)


def test_binary_garbage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "01_x_exercise.ipynb"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadSubmission, match="cannot be read as text"):
        read_submission(path)


def test_the_check_is_called_with_the_course_cells_arguments() -> None:
    arguments = check_arguments('check("06", results=results, total=total, tool_seconds=1 * SCALE)')
    assert arguments == {"results": "results", "total": "total", "tool_seconds": "1 * SCALE"}
    assert check_parameters("06") == ["results", "total", "tool_seconds"]
    namespace = {"results": [1], "SCALE": 0.05, "check": "redefined"}
    sent = answers("06", namespace, arguments, check_parameters("06"))
    assert load_answers(sent.payload) == {"results": [1], "tool_seconds": 0.05}


def test_answers_that_would_run_code_in_the_grader_are_refused() -> None:
    import base64
    import os
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="posix.system is not allowed"):
        load_answers(base64.b64encode(pickle.dumps({"x": Evil()})).decode())
    getattr_trick = pickle.dumps({"x": getattr})
    with pytest.raises(pickle.UnpicklingError, match="builtins.getattr is not allowed"):
        load_answers(base64.b64encode(getattr_trick).decode())


def test_exercise_numbers_come_from_file_names() -> None:
    assert exercise_of("01_serial_baseline_exercise.ipynb") == "01"
    assert exercise_of("02b_eager_tasks_exercise.ipynb") == "02b"
    assert exercise_of("notes.ipynb") is None and exercise_of("01_x.txt") is None


def test_discover_lists_missing_files_and_skips_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "ann" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "ann" / ".ipynb_checkpoints" / "01_a_exercise.ipynb").write_text("{}")
    (tmp_path / "ann" / "02_b_exercise.ipynb").write_text("{}")
    (tmp_path / "ben").mkdir()
    (tmp_path / "ben" / "01_a_exercise.ipynb").write_text("{}")
    found = [(s.learner, s.exercise, s.path is not None) for s in discover(tmp_path)]
    assert found == [("ann", "01", False), ("ann", "02", True), ("ben", "01", True), ("ben", "02", False)]
    with pytest.raises(ConfigurationError, match="not a folder"):
        discover(tmp_path / "nope")


def test_the_summary_counts_the_same_mistake_with_other_timings_once() -> None:
    grades = [
        Grade("a", "01", "passed", 1.0, ("good",)),
        Grade("b", "01", "failed", 1.0, ("your total is 3.10 s",)),
        Grade("c", "01", "failed", 1.0, ("your total is 2.95 s",)),
        Grade("d", "01", "missing", None, ("not handed in",)),
    ]
    assert pass_rates(grades) == {"01": 0.25}
    assert common_feedback(grades) == {"01": ("your total is N s", 2)}
    assert blur("took 1.25 s, 3x") == "took N s, Nx"
    page = render_html(grades)
    assert "your total is N s (2×)" in page and "<th>01</th><td>25%<div class='bar' style='width:25%'>" in page


def test_only_exercises_with_a_check_are_graded(tmp_path: Path) -> None:
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "99_unknown_exercise.ipynb").write_text("{}")
    (tmp_path / "ann" / "01_a_exercise.ipynb").write_text("{}")
    assert [s.exercise for s in discover(tmp_path)] == ["01"]
    with pytest.raises(ConfigurationError, match="no check for exercise 99"):
        discover(tmp_path, ["99"])


def test_the_gradebook_keeps_learner_text_from_becoming_a_formula(tmp_path: Path) -> None:
    grades = [
        Grade('=HYPERLINK("http://x","y")', "01", "passed", 1.0, ("-1 is not a total",)),
        Grade("@sum", "02", "failed", 1.0, ("good",)),
        Grade("zoé", "01", "missing", None, ()),
    ]
    write_gradebook(grades, tmp_path / "gradebook.csv")
    write_grades(grades, tmp_path / "grades.csv")
    with (tmp_path / "gradebook.csv").open(encoding="utf-8", newline="") as file:
        book = list(csv.reader(file))
    assert book == [
        ["learner", "ex01", "ex02", "total"],
        ['\'=HYPERLINK("http://x","y")', "1", "0", "1"],
        ["'@sum", "0", "0", "0"],
        ["zoé", "0", "0", "0"],
    ]
    with (tmp_path / "grades.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["learner"].startswith("'=") and rows[0]["feedback"] == "'-1 is not a total"
    assert rows[1]["learner"] == "'@sum" and rows[1]["feedback"] == "good"


def test_another_courses_notebook_and_an_exercise_with_two_files_are_named(tmp_path: Path) -> None:
    reference = load_reference("01", exercise_notebooks()["01"])
    path = tmp_path / "01_serial_baseline_exercise.ipynb"
    path.write_text(json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])))
    with pytest.raises(BadSubmission, match="not this course's exercise 01"):
        read_submission(path, reference)
    (tmp_path / "ann" / "ps1").mkdir(parents=True)
    for name in ("ps1/01_a_exercise.ipynb", "01_a_exercise-Copy1.ipynb"):
        (tmp_path / "ann" / name).write_text("{}")
    (found,) = discover(tmp_path)
    assert found.path is None and found.problem == (
        "two files for exercise 01: 01_a_exercise-Copy1.ipynb and ps1/01_a_exercise.ipynb; keep one"
    )


def test_a_stand_in_keeps_only_an_http_url() -> None:
    from agentlab.classroom.answers import standing_in

    local = standing_in([("x", "Server")], "<server>", {"url": "file:///etc/passwd", "port": 1})
    assert not hasattr(local, "url") and local.port == 1 and repr(local) == "<server>"
    assert standing_in([("x", "Server")], "<server>", {"url": "http://127.0.0.1:9"}).url == "http://127.0.0.1:9"


def test_a_check_that_never_ends_is_given_up_and_does_not_hold_the_grader() -> None:
    import asyncio
    import threading

    from agentlab.classroom.execute import in_daemon_thread

    release = threading.Event()

    async def judge() -> None:
        assert await in_daemon_thread(sum, [1, 2]) == 3
        with pytest.raises(ZeroDivisionError):
            await in_daemon_thread(divmod, 1, 0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(in_daemon_thread(release.wait), 0.2)

    asyncio.run(judge())  # returns: the loop does not wait for the thread that still waits
    assert [t.name for t in threading.enumerate()].count("agentlab-judge") == 1
    release.set()
