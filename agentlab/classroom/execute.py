"""Run each submitted notebook top to bottom in a fresh kernel and turn what happened into its rows (Grade).

``jobs`` notebooks run at once in one event loop (nbclient's async API), each with ``timeout`` seconds of cell
time, against the grader's one offline server; each kernel is shut down when its notebook ends. A check's
verdict is read only from the grader's own cell after it: a part keeps its verdict when a later part hangs.
"""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from agentlab.classroom.kernels import KERNEL_NAME
from agentlab.classroom.notebook import (
    BadSubmission,
    Reference,
    Submission,
    answer_notes,
    prepare,
    read_submission,
    source_of,
)
from agentlab.exercises import CHECK_MIME

GRADER_SECONDS = 30  # the grader's own cell gets this much even when the learner used up the time limit
Status = Literal["passed", "failed", "error", "timeout", "missing"]
Judged = tuple[Status, list[str]]  # a grader cell's status and feedback


@dataclass(frozen=True)
class Grade:
    """One row of grades.csv: what the grader decided about one learner's exercise."""

    learner: str
    exercise: str
    status: Status
    seconds: float | None
    feedback: tuple[str, ...]


@dataclass(frozen=True)
class Options:
    timeout: float  # seconds of cell time per notebook
    env: dict[str, str]  # the kernels' environment (kernels.kernel_environment)
    executed: Path  # where the executed copies go
    kernels: KernelSpecManager | None = None  # the forked kernels' kernelspec (kernels.py), or None: python3


class Stop:
    """A signal, as the grading loop sees it: after ``now()`` no notebook starts a cell, and the kernels running
    one are killed, so that nbclient ends their notebooks on its usual dead-kernel path (a second shutdown
    beside its own would race it); their rows are not reported."""

    def __init__(self) -> None:
        self.requested = False
        self.kernels: set[AsyncKernelManager] = set()

    async def now(self) -> None:
        self.requested = True
        kills = (km.signal_kernel(signal.SIGKILL) for km in list(self.kernels))
        await asyncio.gather(*kills, return_exceptions=True)


class RunStopped(Exception):
    """Raised before a notebook's next cell once the run is stopped."""


@dataclass
class Run:
    """What happened while one notebook ran: which cell was running, and how it ended."""

    cell_index: int = -1
    ended: str = "ok"  # ok, timeout, died, or what broke


async def grade_all(
    submissions: list[Submission],
    references: dict[str, Reference],
    options: Options,
    jobs: int,
    done: Callable[[Submission, list[Grade]], None],
    stop: Stop,
) -> list[Grade]:
    """Grade every submission, ``jobs`` at a time, calling ``done`` as each one finishes (none once stopped)."""
    slots = asyncio.Semaphore(max(1, jobs))

    async def one(submission: Submission) -> list[Grade]:
        async with slots:
            if stop.requested:
                return []
            grades = await grade_one(submission, references[submission.exercise], options, stop)
        if stop.requested:
            return []
        done(submission, grades)
        return grades

    return [grade for grades in await asyncio.gather(*(one(s) for s in submissions)) for grade in grades]


async def grade_one(submission: Submission, reference: Reference, options: Options, stop: Stop) -> list[Grade]:
    """One Grade per check of the submitted notebook; a bad file is a Grade too, never an exception."""
    learner, exercises = submission.learner, reference.exercises
    if submission.path is None:
        return [not_graded(submission, exercise) for exercise in exercises]
    try:
        notebook = read_submission(submission.path, reference)
    except BadSubmission as bad:
        return [Grade(learner, exercise, "error", None, (str(bad),)) for exercise in exercises]
    notes = answer_notes(notebook, reference)
    executed = prepare(notebook, reference)
    started = time.perf_counter()
    run = await execute(executed, options, stop)
    seconds = round(time.perf_counter() - started, 2)
    write_executed(executed, options.executed / learner / submission.path.name)
    verdicts = judge_run(executed, run, options.timeout)
    return [Grade(learner, e, verdicts[e][0], seconds, (*notes, *verdicts[e][1])) for e in exercises]


def not_graded(submission: Submission, exercise: str) -> Grade:
    """The row of a learner with no file to grade: two files for one exercise, or none."""
    if submission.problem:
        return Grade(submission.learner, exercise, "error", None, (submission.problem,))
    why = f"not handed in: no {submission.exercise}_*.ipynb in the folder"
    return Grade(submission.learner, exercise, "missing", None, (why,))


async def execute(notebook: nbformat.NotebookNode, options: Options, stop: Stop) -> Run:
    """Run the notebook in a fresh kernel in an empty folder; say how it ended instead of raising."""
    run = Run()
    deadline: list[float] = []

    def cell_timeout(cell: Any) -> int:
        if not deadline:  # the clock starts with the first cell, after the kernel is up
            deadline.append(time.monotonic() + options.timeout)
        left = math.ceil(deadline[0] - time.monotonic())
        return max(left, GRADER_SECONDS) if cell.metadata.get("agentlab") else max(left, 1)

    def started(cell: Any, cell_index: int, **_: Any) -> None:
        if stop.requested:  # a kernel that came up after the stop runs no cell
            raise RunStopped
        stop.kernels.add(km)  # only now: nbclient leaves its exit hook behind when a kernel dies as it starts
        run.cell_index = cell_index

    km = kernel_manager(options)
    with tempfile.TemporaryDirectory(prefix="agentlab-grade-") as folder:
        client = NotebookClient(
            notebook,
            km=km,
            timeout_func=cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=False,
            shutdown_kernel="immediate",
            record_timing=False,
            resources={"metadata": {"path": folder}},
            on_cell_execute=started,
        )
        try:
            # cleanup_kc: nbclient shuts down at the end a kernel whose manager it did not make, as here.
            # The kernel's own stderr is noise here (its outputs reach the notebook through the kernel protocol).
            await client.async_execute(cleanup_kc=True, env=options.env, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            run.ended = "timeout"
        except DeadKernelError:
            run.ended = "died"
        except Exception as exc:  # the kernel would not start, or nbclient broke: this notebook's row says so
            run.ended = f"could not run the notebook: {type(exc).__name__}: {str(exc)[:200]}"
        finally:
            stop.kernels.discard(km)
    return run


def kernel_manager(options: Options) -> AsyncKernelManager:
    """A manager for a forked kernel, or for a python3 kernel started from scratch."""
    if options.kernels is None:
        return AsyncKernelManager(kernel_name="python3")
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=options.kernels)


def judge_run(notebook: nbformat.NotebookNode, run: Run, timeout: float) -> dict[str, Judged]:
    """Per grader cell, its verdict with the errors above it named first, or how the run ended before it."""
    cells = notebook.cells
    judged: dict[str, Judged] = {}
    for index, cell in enumerate(cells):
        if (exercise := cell.metadata.get("agentlab", {}).get("grader")) is None:
            continue
        if run.ended != "ok" and index >= run.cell_index:
            judged[exercise] = how_it_ended(cells, run, timeout)
        else:
            judged[exercise] = judge_verdict(cell, cell_errors(cells, index))
    return judged


def how_it_ended(cells: list[Any], run: Run, timeout: float) -> Judged:
    where = describe_cell(cells, run.cell_index)
    if run.ended == "timeout":
        return "timeout", [f"{where} did not finish within {timeout:g} s"]
    if run.ended == "died":
        return "error", [f"the kernel died while running {where} (os._exit, a crash, or out of memory)"]
    return "error", [run.ended]


def judge_verdict(cell: Any, errors: list[str]) -> Judged:
    verdict = read_verdict(cell)
    if verdict is None:
        return "error", [*errors, "the grader's check did not run: " + grader_problem(cell)]
    messages = [str(m) for m in verdict.get("messages", [])]
    if verdict.get("passed") is True:
        return "passed", [*errors, *messages]
    return ("error" if errors else "failed"), [*errors, *messages]


def describe_cell(cells: list[Any], index: int) -> str:
    """``cell 3 (`first line`)``, numbered as in the learner's notebook (the grader's cells not counted)."""
    if not 0 <= index < len(cells) or cells[index].metadata.get("agentlab"):
        return "the grader's check cell"
    number = sum(1 for cell in cells[: index + 1] if not cell.metadata.get("agentlab"))
    lines = [line.strip() for line in source_of(cells[index]).splitlines() if line.strip()]
    return f"cell {number} (`{lines[0][:60]}`)" if lines else f"cell {number}"


def cell_errors(cells: list[Any], stop: int) -> list[str]:
    """``cell 3 (`...`) raised NameError: ...`` for each learner cell above ``stop`` that raised."""
    found = []
    for index, cell in enumerate(cells[:stop]):
        if cell.cell_type != "code" or cell.metadata.get("agentlab"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = str(output.get("evalue", "")).splitlines()[0] if output.get("evalue") else ""
                found.append(f"{describe_cell(cells, index)} raised {output.get('ename', 'an error')}: {value:.160}")
    return found


def read_verdict(cell: Any) -> dict[str, Any] | None:
    for output in reversed(cell.get("outputs", [])):
        data = output.get("data", {}).get(CHECK_MIME)
        if isinstance(data, dict) and isinstance(data.get("passed"), bool):
            return data
    return None


def grader_problem(cell: Any) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {str(output.get('evalue', ''))[:160]}"
    return "it showed no verdict"


def write_executed(notebook: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))  # type: ignore[no-untyped-call]
