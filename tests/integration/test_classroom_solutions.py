"""Every course solution, handed in as a learner's exercise, passes ``python -m agentlab grade`` in the sandbox:
the answers of each kind of check cross from the kernel to the grader's own check (results, outcomes, a
report, a matplotlib Figure, a closed client, a server the notebook started). Two more learners hand in only
exercise 08's solution, graded first and at the same time: each keeps its state file in its own /tmp (issue 24
#3: they shared one, and the model solution failed 4 times in 6 at --jobs 2).

Exercise 10 (a Dask cluster, 30 s more) is left out here; its answers are outcomes, as 07's are.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agentlab.classroom.course import exercise_notebooks, solution_of

pytestmark = pytest.mark.timeout(600)
EXERCISES = [e for e in exercise_notebooks() if e != "10"]


def test_every_solution_passes_and_two_at_once_keep_their_own_files(tmp_path: Path) -> None:
    root, out = tmp_path / "class", tmp_path / "report"
    for learner, exercises in (("ann", ["08"]), ("ben", ["08"]), ("zoe", EXERCISES)):
        (root / learner).mkdir(parents=True)
        for exercise in exercises:
            path = exercise_notebooks()[exercise]
            (root / learner / path.name).write_bytes(solution_of(path).read_bytes())
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_TEST_RUN": uuid.uuid4().hex}
    command = [sys.executable, "-m", "agentlab", "grade", str(root), "--out", str(out), "--jobs", "2"]
    done = subprocess.run([*command, "--exercises", ",".join(EXERCISES)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "grades.csv").open(encoding="utf-8") as file:
        rows = {(r["learner"], r["exercise"]): r for r in csv.DictReader(file)}
    not_passed = {key: row["feedback"] for key, row in rows.items() if key[0] == "zoe" and row["status"] != "passed"}
    assert not_passed == {}
    assert (rows["ann", "08"]["status"], rows["ben", "08"]["status"]) == ("passed", "passed"), rows
