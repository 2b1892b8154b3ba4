"""No process outlives its command: ``grade`` stopped by Ctrl-C or SIGTERM in the middle of a class, and the
kernels that the test suite forks for nbval (the root conftest.py's zygote).

Every process such a command starts inherits ``AGENTLAB_TEST_RUN`` from it (forked kernels too), so
``survivors`` finds them even once orphaned; the class's normal run, timeout and dead kernel included, is
checked in test_classroom_grade.py.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest
from classroom_class import EXERCISE, RIGHT, processes_marked, survivors, with_answer

ROOT = Path(__file__).resolve().parents[2]
HANG = "import time\nwhile True:\n    time.sleep(0.05)\n"
pytestmark = pytest.mark.timeout(300)


def stand_ins_started(process: subprocess.Popen[str], mark: str, wanted: int, seconds: float = 120) -> set[int]:
    """Watch the grader's kernels come and go until ``wanted`` of them have started (so that the first is done)."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < wanted and time.monotonic() < deadline and process.poll() is None:
        for found in processes_marked(mark):
            try:
                if "stand-in" in found.cmdline() or "ipykernel_launcher" in " ".join(found.cmdline()):
                    seen.add(found.pid)
            except psutil.Error:  # it ended while we looked
                continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)  # between looks; returns at once if the grader ends
    return seen


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_the_run_keeps_what_was_graded_and_leaves_nothing(tmp_path: Path, stop: signal.Signals) -> None:
    for name, code in [("ann", RIGHT), ("bob", HANG), ("cat", HANG), ("dan", HANG)]:
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / EXERCISE.name).write_text(with_answer(code)(), encoding="utf-8")
    mark, out = uuid.uuid4().hex, tmp_path / "report"
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_TEST_RUN": mark}
    command = [sys.executable, "-m", "agentlab", "grade", str(tmp_path / "class"), "--out", str(out)]
    grader = subprocess.Popen(
        [*command, "--jobs", "2", "--timeout", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert len(stand_ins_started(grader, mark, wanted=3)) >= 3, "the grader never got to its third notebook"
        grader.send_signal(stop)
        _, stderr = grader.communicate(timeout=60)
    finally:
        grader.kill()
    left = survivors(mark, time.monotonic())
    assert left == [], f"alive 2 s after grade was stopped by {stop.name}: {left}"
    assert grader.returncode == 128 + stop, stderr[-2000:]
    assert f"stopped by {stop.name}" in stderr and "Traceback" not in stderr, stderr[-2000:]
    with (out / "grades.csv").open(encoding="utf-8") as file:
        rows = {row["learner"]: row for row in csv.DictReader(file)}
    assert rows["ann"]["status"] == "passed", rows["ann"]
    for name in ("bob", "cat", "dan"):
        assert rows[name]["status"] == "error" and f"stopped by {stop.name}" in rows[name]["feedback"], rows[name]


def test_nbvals_forked_kernels_end_with_the_test_run() -> None:
    """One notebook under nbval, with the root conftest's zygote: its kernel and the zygote are gone after."""
    mark = uuid.uuid4().hex
    notebook = next((ROOT / "notebooks" / "solutions").glob("01_*_solution.ipynb"))
    env = {**os.environ, "AGENTLAB_TEST_RUN": mark}
    env.pop("AGENTLAB_NBVAL_FORK", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--nbval"]
    command += ["--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", str(notebook)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    left = survivors(mark, time.monotonic())
    assert " passed" in done.stdout or " failed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert left == [], f"alive 2 s after pytest --nbval returned: {left}"


def test_a_grader_killed_leaves_a_report_marked_unfinished_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the last run's grades.csv is gone rather than looking current, RUNNING says
    why, no process is left (the sandbox dies with its grader), and the next run removes the temporary folder."""
    for name, code in [("ann", RIGHT), ("bob", HANG)]:
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / EXERCISE.name).write_text(with_answer(code)(), encoding="utf-8")
    out = tmp_path / "report"
    out.mkdir()
    (out / "grades.csv").write_text("learner,exercise,status,seconds,feedback\nold,01,passed,1.00,last week\n")
    mark = uuid.uuid4().hex
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_TEST_RUN": mark}
    command = [sys.executable, "-m", "agentlab", "grade", str(tmp_path / "class"), "--out", str(out)]
    grader = subprocess.Popen([*command, "--jobs", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert len(stand_ins_started(grader, mark, wanted=2)) >= 2, "the grader never got to its second notebook"
        grader.kill()
        grader.wait(timeout=30)
    finally:
        grader.kill()
    left = survivors(mark, time.monotonic())
    assert left == [], f"alive 2 s after grade was killed: {left}"
    assert not (out / "grades.csv").exists()
    assert "has not finished" in (out / "RUNNING").read_text(encoding="utf-8")
    stale = Path(tempfile.gettempdir()) / f"agentlab-grading-{grader.pid}"
    assert stale.is_dir()
    shutil.rmtree(tmp_path / "class" / "bob")
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not stale.exists() and not (out / "RUNNING").exists()
    with (out / "grades.csv").open(encoding="utf-8") as file:
        assert [(r["learner"], r["status"]) for r in csv.DictReader(file)] == [("ann", "passed")]
