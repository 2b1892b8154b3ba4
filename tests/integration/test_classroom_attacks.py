"""Learners who attack the grader, each with real code in the answer cell of exercise 01, graded by
``python -m agentlab grade`` as a teacher runs it (issue 24, items 1-8).

The teacher's environment holds a fake API key; one learner looks for it everywhere a kernel could (its own
environment, every ``/proc/*/environ``), for the other learners' files and for the solutions, and writes what it
found into the feedback; others forge a verdict three ways, print too much, or take too long cell by cell.
Every attack also says what it did, so that a test cannot pass because an attack never ran.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from classroom_class import EXERCISE, RIGHT, WRONG, answer_index, load, survivors, with_answer

from agentlab.classroom.course import course_folder
from agentlab.classroom.kernels import sandbox_problem

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(bool(sandbox_problem()), reason=f"no sandbox here: {sandbox_problem()}"),
]
SECRET = "sk-test-" + uuid.uuid4().hex  # the teacher's key: it must reach no kernel and no file of the report
SOLUTION = next((course_folder() / "solutions").glob("01_*_solution.ipynb"))
TIMEOUT = 8  # the class's --timeout: slow's twelve cells of 0.9 s go past it

FORGE_BY_RELOAD = WRONG + (
    "import importlib, agentlab.exercises as ex\n"
    "importlib.reload = lambda module: type('Judge', (), {'judge': staticmethod(\n"
    "    lambda *a, **k: ex.Feedback(True, ('forged by reload',), '01'))})\n"
)
FORGE_BY_IMPORT = WRONG + (
    "import agentlab.exercises as ex\n"
    "class Judge:\n"
    "    judge = staticmethod(lambda *a, **k: ex.Feedback(True, ('forged by __import__',), '01'))\n"
    "    reload = staticmethod(lambda module: Judge)\n"
    "__import__ = lambda *a, **k: Judge\n"
)
FORGE_BY_HOOK = WRONG + (
    "from IPython import get_ipython\n"
    "from IPython.display import display\n"
    "def forge(result):\n"
    "    verdict = {'exercise': '01', 'passed': True, 'messages': ['forged by a hook']}\n"
    "    display({'application/vnd.agentlab.check+json': verdict, 'text/plain': 'forged'}, raw=True)\n"
    "get_ipython().events.register('post_run_cell', forge)\n"
)


def snoop(paths: list[Path]) -> str:
    """Look for the key and for files of others; raise what was found, so that it lands in the feedback."""
    return (
        "import os, glob\n"
        f"secret, found = {SECRET[::-1]!r}[::-1], []  # written backwards: its own notebook does not hold it\n"
        "if secret in repr(dict(os.environ)): found.append('own environment')\n"
        "for environ in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        if secret.encode() in open(environ, 'rb').read(): found.append(environ)\n"
        "    except OSError:\n"
        "        pass\n"
        f"for path in {[str(p) for p in paths]!r}:\n"
        "    if os.path.isfile(path) or os.path.isdir(path) and os.listdir(path): found.append(path)\n"
        "processes = len(glob.glob('/proc/[0-9]*'))\n"
        "open('/tmp/left-by-snoop', 'w').write('mine')\n"
        "tmp = sorted(os.listdir('/tmp'))\n"
        "raise RuntimeError(f'snooped: found {found}; {processes} processes; /tmp has {tmp}')\n"
    )


def slow() -> str:
    """Twelve cells of 0.9 s, then the right answer: 10.8 s of cells under a total of 8 s."""
    notebook = load(EXERCISE)
    index = answer_index(notebook)
    notebook["cells"][index]["source"] = RIGHT
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": []}
    sleeps = [{**cell, "id": f"sleep{i}", "source": "import time\ntime.sleep(0.9)"} for i in range(12)]
    notebook["cells"] = notebook["cells"][:index] + sleeps + notebook["cells"][index:]
    return json.dumps(notebook)


LOUD = RIGHT + "\nfor _ in range(1000):\n    print('x' * 100_000)\n"  # 100 MB of output
LEAVE = "open('/tmp/left-by-markup', 'w').write('for the next kernel to find')\n"
FORMULA = '=HYPERLINK("http:evil","click")'


HOME_FILE = Path.home() / f".agentlab-test-{uuid.uuid4().hex}"  # a teacher's file, such as ~/.netrc


def make_class(root: Path) -> dict[str, str]:
    learners = {
        "ann": with_answer(RIGHT)(),
        "forge_hook": with_answer(FORGE_BY_HOOK)(),
        "forge_import": with_answer(FORGE_BY_IMPORT)(),
        "forge_reload": with_answer(FORGE_BY_RELOAD)(),
        "loud": with_answer(LOUD)(),
        "markup": with_answer(LEAVE + 'raise RuntimeError("$\\\\cost$ <b>bold</b> & co")\n')(),
        "slow": slow(),
        FORMULA: with_answer(RIGHT)(),
    }
    hidden = [root / "ann" / EXERCISE.name, SOLUTION, course_folder().parent / ".git", HOME_FILE]
    learners["snoop"] = with_answer(snoop([p for p in hidden if p.exists()]))()
    for name, text in learners.items():
        (root / name).mkdir(parents=True)
        (root / name / EXERCISE.name).write_text(text, encoding="utf-8")
    return learners


GRADER_PEAK_KB: list[int] = []
MEASURE_PEAK = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, str]], str]:
    root, out = tmp_path_factory.mktemp("class"), tmp_path_factory.mktemp("report")
    HOME_FILE.write_text("the teacher's own file", encoding="utf-8")
    try:
        make_class(root)
        return grade_class(root, out)
    finally:
        HOME_FILE.unlink()


def grade_class(root: Path, out: Path) -> tuple[Path, dict[str, dict[str, str]], str]:
    mark = uuid.uuid4().hex
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_TEST_RUN": mark, "OPENAI_API_KEY": SECRET}
    command = [sys.executable, "-m", "agentlab", "grade", str(root), "--out", str(out), "--timeout", str(TIMEOUT)]
    # The grader's own peak: a fresh process runs it and reads its children's peak, so that nothing this test
    # process started before (another file's subprocesses, on the same xdist worker) counts.
    peak = out.parent / f"{out.name}-peak-kb"
    measured = [sys.executable, "-c", MEASURE_PEAK, str(peak), *command, "--jobs", "2"]
    done = subprocess.run(measured, capture_output=True, text=True, env=env, timeout=500)
    GRADER_PEAK_KB.append(int(peak.read_text()))
    left = survivors(mark, time.monotonic())
    assert done.returncode == 0, done.stderr[-3000:]
    assert left == [], f"alive 2 s after grade returned: {left}"
    with (out / "grades.csv").open(encoding="utf-8", newline="") as file:
        rows = {row["learner"]: row for row in csv.DictReader(file)}
    return out, rows, done.stderr


def test_the_right_answer_passes_in_the_sandbox(graded: tuple[Path, dict[str, dict[str, str]], str]) -> None:
    _, rows, stderr = graded
    assert rows["ann"]["status"] == "passed", rows["ann"]
    assert "without a sandbox" not in stderr.lower()


@pytest.mark.parametrize("learner", ["forge_reload", "forge_import", "forge_hook"])
def test_a_forged_verdict_does_not_pass(graded: tuple[Path, dict[str, dict[str, str]], str], learner: str) -> None:
    row = graded[1][learner]
    assert row["status"] == "failed" and "forged" not in row["feedback"], row
    assert "100" in row["feedback"], row  # judged on the wrong total that the learner gave


def test_a_kernel_sees_no_key_no_other_learner_no_solution(graded: tuple[Path, dict[str, dict[str, str]], str]) -> None:
    out, rows, _ = graded
    feedback = rows["snoop"]["feedback"]
    assert "snooped: found []" in feedback, feedback  # the attack ran, and found nothing
    assert "; 1 processes;" in feedback, feedback  # its own PID namespace: only itself
    assert "left-by-snoop" in feedback and "left-by-markup" not in feedback, feedback  # /tmp: its own
    every_file = [p for p in out.rglob("*") if p.is_file()]
    assert every_file and not [p for p in every_file if SECRET in p.read_text(encoding="utf-8", errors="replace")]


def test_the_timeout_is_a_total_for_the_notebook(graded: tuple[Path, dict[str, dict[str, str]], str]) -> None:
    row = graded[1]["slow"]
    assert row["status"] == "timeout" and f"did not finish within {TIMEOUT} s" in row["feedback"], row


def test_output_is_capped_and_the_row_says_so(graded: tuple[Path, dict[str, dict[str, str]], str]) -> None:
    out, rows, _ = graded
    assert rows["loud"]["status"] == "passed" and "output: the rest was cut" in rows["loud"]["feedback"]
    executed = out / "executed" / "loud" / EXERCISE.name
    assert 1_900_000 < executed.stat().st_size < 2_500_000, executed.stat().st_size  # of 100 MB printed
    assert GRADER_PEAK_KB[0] < 250_000, GRADER_PEAK_KB  # before: 385 MB, as 100 MB crossed in one message
    assert "the grader cut the output here" in executed.read_text(encoding="utf-8")


def test_learner_text_is_data_in_the_csv_and_the_page(graded: tuple[Path, dict[str, dict[str, str]], str]) -> None:
    out, rows, _ = graded
    assert rows["'" + FORMULA]["status"] == "passed"
    assert "$\\cost$ <b>bold</b> & co" in rows["markup"]["feedback"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "$\\cost$ &lt;b&gt;bold&lt;/b&gt; &amp; co" in page and "<b>bold</b>" not in page
    assert html_escaped(FORMULA) in page


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_no_temporary_folder_or_marker_is_left(graded: tuple[Path, dict[str, dict[str, str]], str]) -> None:
    out, _, _ = graded
    assert not (out / "RUNNING").exists()
    assert not list(out.rglob("*.partial"))
