"""``python -m agentlab grade SUBMISSIONS --out REPORT``: the whole class, found and graded into one report.

The class is one folder per learner (or nbgrader's ``submitted/``), each holding exercise notebooks under their
own names at any depth; the course's lessons and solutions beside them are not submissions. Kernels run at
``--time-scale`` 0.1 against one offline server: the checks judge from the results' own time stamps, with slack
that scales with the durations; at 0.05 a busy machine's fixed overheads can refuse a right answer.

Ctrl-C or SIGTERM stops the run, every kernel and the zygote with it; the report keeps the rows graded so far.
The grading loop runs in a thread so that signals stay the main thread's (nbclient would kill one kernel each).
While a run goes on, ``REPORT/RUNNING`` says so and the last run's report is gone; its temporary files live in
one folder, ``agentlab-grading-<pid>`` in the system's temporary folder, which the next run removes if a
SIGKILL left it behind. Grading is offline: the grader drops API keys and tokens from its own environment.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import pkgutil
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.classroom.course import (
    course_folder,
    course_notebook_names,
    exercise_notebooks,
    exercise_of,
    refuse_inside,
)
from agentlab.classroom.kernels import forked_kernels, is_secret, kernel_environment, sandbox_problem
from agentlab.classroom.notebook import Reference, Submission, load_reference
from agentlab.errors import AgentLabError, ConfigurationError

if TYPE_CHECKING:
    from agentlab.classroom.execute import Grade, Stop


RUN_PREFIX = "agentlab-grading-"


def grade_command(args: argparse.Namespace) -> int:
    """Exit 0 once the report is written; 2 when the grader cannot run; 128 + the signal's number if stopped."""
    for key in [key for key in os.environ if is_secret(key)]:
        del os.environ[key]  # nothing the grader starts, nor /proc/<grader>/environ, holds a key
    with stop_on_signals() as stopped_by:
        return grade_and_report(args, stopped_by)


def grade_and_report(args: argparse.Namespace, stopped_by: list[str]) -> int:
    submissions: list[Submission] = []
    finished: dict[Submission, list[Grade]] = {}
    warnings: list[str] = []
    try:
        check_arguments(args)
        wanted = [e.strip().zfill(2) for e in args.exercises.split(",") if e.strip()] or None
        submissions = discover(args.submissions, wanted)
        start_report(args.out)
        fork = not args.no_fork
        warnings = sandbox_warnings(fork, hidden_from_learners(args))
        with run_folder() as scratch:
            grades = grade_class(submissions, args, scratch, fork, finished, warnings)
    except (AgentLabError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if not submissions:
            print(f"error: stopped by {stopped_by[0]} before grading began", file=sys.stderr)
            return 128 + signal.Signals[stopped_by[0]].value
        grades = [g for s in submissions for g in finished.get(s) or stopped_rows(s, stopped_by[0])]
    from agentlab.classroom.report import write_report

    write_report(grades, args.out, tuple(warnings))
    (args.out / "RUNNING").unlink(missing_ok=True)
    passed = sum(g.status == "passed" for g in grades)
    print(f"{passed}/{len(grades)} passed; wrote {args.out / 'grades.csv'}, gradebook.csv and report.html")
    if len(finished) < len(submissions):
        print(f"error: stopped by {stopped_by[0]} with {len(finished)} of {len(submissions)} graded", file=sys.stderr)
        return 128 + signal.Signals[stopped_by[0]].value
    return 0


@contextmanager
def stop_on_signals() -> Iterator[list[str]]:
    """SIGINT (even if a shell ignored it) and SIGTERM raise KeyboardInterrupt; the list names the signal."""
    received = ["SIGINT"]

    def stop(number: int, _frame: Any) -> None:
        received[0] = signal.Signals(number).name
        raise KeyboardInterrupt

    former = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, handler in former.items():
            signal.signal(number, handler)


def start_report(out: Path) -> None:
    """The last run's report goes, and ``RUNNING`` says that this one has not finished (yet)."""
    from agentlab.classroom.report import REPORT_FILES

    out.mkdir(parents=True, exist_ok=True)
    (out / "RUNNING").write_text(
        f"a grading run (pid {os.getpid()}) started at {time.strftime('%Y-%m-%d %H:%M:%S')} and has not finished: "
        "if it is no longer running, it was killed; run `python -m agentlab grade` again\n",
        encoding="utf-8",
    )
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "executed", ignore_errors=True)


@contextmanager
def run_folder() -> Iterator[Path]:
    """The run's temporary folder (removed at the end); first the folders of runs whose grader is gone."""
    for stale in Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*"):
        pid = stale.name.removeprefix(RUN_PREFIX)
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.gettempdir()) / f"{RUN_PREFIX}{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hidden_from_learners(args: argparse.Namespace) -> list[Path]:
    """What the sandbox hides besides the teacher's home and Jupyter's files (kernels.hidden_folders)."""
    return [args.submissions, args.out, course_folder() / "solutions", course_folder().parent / ".git"]


def sandbox_warnings(fork: bool, hidden: list[Path]) -> list[str]:
    """One line, on stderr and in report.html, when the learners' kernels will run without the sandbox."""
    problem = "--no-fork starts plain kernels" if not fork else sandbox_problem(hidden)
    if not problem:
        return []
    warning = (
        f"the learners' notebooks run WITHOUT a sandbox ({problem}): a notebook can read the other submissions, "
        "the solutions and your files. Install bubblewrap (apt-get install bubblewrap) to grade in isolation"
    )
    print(f"warning: {warning}", file=sys.stderr)
    return [warning]


def stopped_rows(submission: Submission, signal_name: str) -> list[Grade]:
    """The rows of a notebook that a signal kept from being graded: one per check, each saying so."""
    from agentlab.classroom.execute import Grade

    reference = load_reference(submission.exercise, exercise_notebooks().get(submission.exercise))
    why = (f"not graded: the run was stopped by {signal_name} before this notebook was done",)
    return [Grade(submission.learner, exercise, "error", None, why) for exercise in reference.exercises]


def check_arguments(args: argparse.Namespace) -> None:
    if args.jobs < 1 or args.timeout <= 0 or args.time_scale <= 0:
        raise AgentLabError("--jobs must be at least 1, and --timeout and --time-scale greater than 0")
    refuse_inside(args.out, args.submissions, "the submissions")
    refuse_inside(args.out, course_folder(), "the course's notebooks")


def discover(root: Path, exercises: list[str] | None = None) -> list[Submission]:
    """Every (learner, exercise) pair of the class, sorted, handed in or not."""
    learners = learner_folders(root)
    checked = checked_exercises()
    if unknown := [e for e in exercises or [] if e not in checked]:
        raise ConfigurationError(f"no check for exercise {', '.join(unknown)}: choose from {', '.join(checked)}")
    handed_in = {learner: notebooks_of(learner) for learner in learners}
    found = {exercise for files in handed_in.values() for exercise in files if exercise in checked}
    wanted = exercises or sorted(found)
    if not wanted:
        raise ConfigurationError(
            f"no exercise notebooks (named like 01_serial_baseline_exercise.ipynb) under {root}: "
            "give the folder that holds one folder per learner"
        )
    return [submission(learner, exercise, handed_in[learner]) for learner in learners for exercise in wanted]


def submission(learner: Path, exercise: str, files: dict[str, list[Path]]) -> Submission:
    """The learner's one file for the exercise; none, or two of them, is a row that says so."""
    paths = files.get(exercise, [])
    if len(paths) > 1:
        names = " and ".join(str(p.relative_to(learner)) for p in paths)
        return Submission(learner.name, exercise, None, f"two files for exercise {exercise}: {names}; keep one")
    return Submission(learner.name, exercise, paths[0] if paths else None)


def checked_exercises() -> list[str]:
    """The exercises that have a check module (``agentlab/exercises/exNN.py``): only those can be graded."""
    import agentlab.exercises

    modules = pkgutil.iter_modules(agentlab.exercises.__path__)
    return sorted(m.name[2:] for m in modules if m.name.startswith("ex") and exercise_of(f"{m.name[2:]}_.ipynb"))


def learner_folders(root: Path) -> list[Path]:
    """The learners' folders: the subfolders of ``root``, or of ``root/submitted`` (nbgrader's layout)."""
    if not root.is_dir():
        raise ConfigurationError(f"{root} is not a folder: give the folder that holds one folder per learner")
    if (root / "submitted").is_dir():
        root = root / "submitted"
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ConfigurationError(f"{root} holds no learner folders: put each learner's notebooks in their own folder")
    return folders


def notebooks_of(learner: Path) -> dict[str, list[Path]]:
    """The learner's exercise files by number; hidden folders and the course's own notebooks left out."""
    course = course_notebook_names()
    found: dict[str, list[Path]] = {}
    for path in sorted(learner.rglob("*.ipynb")):
        relative = path.relative_to(learner)
        hidden = any(part.startswith(".") for part in relative.parts)
        exercise = exercise_of(path.name)
        if path.is_file() and not hidden and exercise is not None and path.name not in course:
            found.setdefault(exercise, []).append(path)
    return found


def grade_class(
    submissions: list[Submission],
    args: argparse.Namespace,
    scratch: Path,
    fork: bool,
    finished: dict[Submission, list[Grade]],
    warnings: list[str],
) -> list[Grade]:
    """Grade every submission against one offline server, in forked kernels in the sandbox unless ``fork`` is
    False (2.5 s of CPU more per notebook); each submission's rows go into ``finished`` as it is done."""
    from tqdm import tqdm

    from agentlab.offline import config_from_env, start

    references = {e: load_reference(e, p) for e, p in exercise_notebooks().items()}
    references.update({s.exercise: Reference(s.exercise) for s in submissions if s.exercise not in references})
    config = config_from_env({**os.environ, "AGENTLAB_TIME_SCALE": str(args.time_scale)})
    hidden = hidden_from_learners(args)
    with start(config) as server:
        env = kernel_environment(server.base_url, args.time_scale)
        with forked_kernels(env, scratch, hidden, sandboxed=not warnings) if fork else nullcontext() as kernels:
            # nbclient and nbformat load while the zygote warms up
            from agentlab.classroom.execute import Options, Stop, grade_all

            options = Options(args.timeout, env, args.out / "executed", scratch, kernels() if kernels else None)
            with tqdm(total=len(submissions), desc="grading", unit="notebook") as bar:

                def done(submission: Submission, grades: list[Grade]) -> None:
                    finished[submission] = grades
                    bar.update()

                stop = Stop()
                return run_in_thread(grade_all(submissions, references, options, args.jobs, done, stop), stop)


def run_in_thread(work: Coroutine[Any, Any, list[Grade]], stop: Stop) -> list[Grade]:
    """Run the grading coroutine on an event loop in a thread; on Ctrl-C or SIGTERM, stop it (the kernels that
    run are killed), wait until it has ended with signals ignored meanwhile, and raise KeyboardInterrupt."""
    loops: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()

    async def main() -> list[Grade]:
        loops.set_result(asyncio.get_running_loop())
        return await work

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agentlab-grading") as pool:
        future = pool.submit(asyncio.run, main())
        try:
            return future.result()
        except KeyboardInterrupt:
            ignored = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
            with suppress(RuntimeError):  # the loop has closed already: the run had just ended
                asyncio.run_coroutine_threadsafe(stop.now(), loops.result())
            concurrent.futures.wait([future])
            for number, handler in ignored.items():
                signal.signal(number, handler)
            raise KeyboardInterrupt from None
