"""The class's report: ``grades.csv`` (a row per learner and check), ``gradebook.csv`` and ``report.html``.

``gradebook.csv`` has a row per learner, a column per check (``ex02b``: 1 passed, 0 otherwise) and a ``total``:
plain UTF-8 CSV with a header row, as spreadsheets and LMS imports read it. Learner text that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a ``'`` in front, so that no spreadsheet runs it as a
formula (OWASP's advice on CSV injection). The HTML page colours a cell per learner and check, with a class
summary: the pass rate (with a bar) and the most common feedback per check; it needs no other file.

Each file is written beside its place and renamed into it, so a grader killed meanwhile leaves either the
whole file or none (``grade.py`` removes the last run's report when a run starts, and marks it RUNNING).
"""

from __future__ import annotations

import csv
import html
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentlab.classroom.execute import Grade

COLUMNS = ("learner", "exercise", "status", "seconds", "feedback")
COLOURS = {"passed": "#c8e6c9", "failed": "#ffcdd2", "error": "#ffe0b2", "timeout": "#fff9c4", "missing": "#eeeeee"}
SEPARATOR = " | "
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


REPORT_FILES = ("grades.csv", "gradebook.csv", "report.html")


def write_report(grades: list[Grade], out: Path, warnings: tuple[str, ...] = ()) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_grades(grades, out / "grades.csv")
    write_gradebook(grades, out / "gradebook.csv")
    with atomically(out / "report.html") as partial:
        partial.write_text(render_html(grades, warnings), encoding="utf-8")


@contextmanager
def atomically(path: Path) -> Iterator[Path]:
    """A file to write beside ``path``, renamed into its place once written (removed if writing fails)."""
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_grades(grades: list[Grade], path: Path) -> None:
    with atomically(path) as partial, partial.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for g in grades:
            seconds = "" if g.seconds is None else f"{g.seconds:.2f}"
            feedback = SEPARATOR.join(g.feedback)
            writer.writerow((as_text(g.learner), g.exercise, g.status, seconds, as_text(feedback)))


def write_gradebook(grades: list[Grade], path: Path) -> None:
    """One row per learner: 1 or 0 per check, and the total."""
    checks = sorted({g.exercise for g in grades})
    passed = {(g.learner, g.exercise) for g in grades if g.status == "passed"}
    with atomically(path) as partial, partial.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["learner", *(f"ex{check}" for check in checks), "total"])
        for learner in sorted({g.learner for g in grades}):
            marks = [int((learner, check) in passed) for check in checks]
            writer.writerow([as_text(learner), *marks, sum(marks)])


def as_text(value: str) -> str:
    """A cell that a spreadsheet shows as text: a leading formula character gets a ``'`` in front."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def pass_rates(grades: list[Grade]) -> dict[str, float]:
    """The share of learners who passed, per exercise."""
    rates = {}
    for exercise in sorted({g.exercise for g in grades}):
        rows = [g for g in grades if g.exercise == exercise]
        rates[exercise] = sum(g.status == "passed" for g in rows) / len(rows)
    return rates


def common_feedback(grades: list[Grade]) -> dict[str, tuple[str, int]]:
    """The most common first feedback of the learners who did not pass, per exercise (numbers blurred)."""
    common = {}
    for exercise in sorted({g.exercise for g in grades}):
        keys = Counter(
            blur(g.feedback[0]) for g in grades if g.exercise == exercise and g.status != "passed" and g.feedback
        )
        if keys:
            common[exercise] = keys.most_common(1)[0]
    return common


def blur(message: str) -> str:
    """The same mistake with other timings is the same feedback: ``1.23 s`` becomes ``N s``."""
    return re.sub(r"\d+(\.\d+)?", "N", message)


def render_html(grades: list[Grade], warnings: tuple[str, ...] = ()) -> str:
    learners = sorted({g.learner for g in grades})
    exercises = sorted({g.exercise for g in grades})
    cells = {(g.learner, g.exercise): g for g in grades}
    head = "".join(f"<th>{html.escape(e)}</th>" for e in exercises)
    rows = "".join(
        f"<tr><th>{html.escape(learner)}</th>{''.join(render_cell(cells.get((learner, e))) for e in exercises)}</tr>"
        for learner in learners
    )
    return PAGE.format(
        n=len(learners),
        warnings="".join(f"<p class='warning'>warning: {html.escape(w)}</p>" for w in warnings),
        summary=render_summary(grades),
        table=f"<table class='grades'><tr><th>learner</th>{head}</tr>{rows}</table>",
    )


def render_cell(grade: Grade | None) -> str:
    if grade is None:
        return "<td></td>"
    feedback = "<br>".join(html.escape(m) for m in grade.feedback)
    seconds = "" if grade.seconds is None else f" · {grade.seconds:.1f} s"
    return (
        f"<td style='background:{COLOURS[grade.status]}' title='{html.escape(SEPARATOR.join(grade.feedback))}'>"
        f"<b>{grade.status}</b>{seconds}<div class='feedback'>{feedback}</div></td>"
    )


def render_summary(grades: list[Grade]) -> str:
    common = common_feedback(grades)
    rows = "".join(
        f"<tr><th>{e}</th><td>{rate:.0%}<div class='bar' style='width:{100 * rate:.0f}%'></div></td>"
        f"<td>{html.escape(common.get(e, ('-', 0))[0])}"
        f"{f' ({common[e][1]}×)' if e in common else ''}</td></tr>"
        for e, rate in pass_rates(grades).items()
    )
    return (
        f"<table class='summary'><tr><th>exercise</th><th>passed</th><th>most common feedback</th></tr>{rows}</table>"
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentlab grades</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; text-align: left; }}
.feedback {{ font-size: 0.8em; max-width: 28em; }}
.warning {{ background: #ffe0b2; padding: 0.5em; font-weight: bold; }}
.bar {{ background: #1b7f3b; height: 0.6em; min-width: 1px; }}
</style></head><body>
<h1>Grades: {n} learners</h1>
{warnings}<h2>Class summary</h2>
{summary}
<h2>Per learner</h2>
{table}
</body></html>
"""
