"""Run each submitted notebook top to bottom in a fresh kernel and turn what happened into a Grade.

Several notebooks run at once (``jobs``) in one event loop with nbclient's async API; each gets ``timeout``
seconds of cell time. Every kernel talks to the one offline server the grader started (``AGENTLAB_OFFLINE_URL``)
at the grader's time scale. The verdict is read only from the grader's own last cell.
"""

from __future__ import annotations

import asyncio
import math
import os
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

from agentlab.classroom.discover import Submission
from agentlab.classroom.forking import KERNEL_NAME
from agentlab.classroom.notebook import BadSubmission, answer_notes, prepare, read_submission
from agentlab.classroom.reference import Reference, source_of
from agentlab.exercises import CHECK_MIME

Status = Literal["passed", "failed", "error", "timeout", "missing"]
GRADER_SECONDS = 30  # the grader's own cell gets this much even when the learner used up the time limit


@dataclass(frozen=True)
class Grade:
    """One row of grades.csv."""

    learner: str
    exercise: str
    status: Status
    seconds: float | None
    feedback: tuple[str, ...]


@dataclass(frozen=True)
class Options:
    timeout: float  # seconds of cell time per notebook
    time_scale: float  # AGENTLAB_TIME_SCALE of the kernels and the server
    server_url: str  # the shared offline server's base URL
    executed: Path  # where the executed copies go
    kernels: KernelSpecManager | None = None  # the forked kernels' kernelspec (forking.py), or None: python3


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
    done: Callable[[Grade], None],
) -> list[Grade]:
    """Grade every submission, ``jobs`` at a time, calling ``done`` as each one finishes; in input order."""
    slots = asyncio.Semaphore(max(1, jobs))

    async def one(submission: Submission) -> Grade:
        async with slots:
            reference = references.get(submission.exercise, Reference(submission.exercise))
            grade = await grade_one(submission, reference, options)
        done(grade)
        return grade

    return list(await asyncio.gather(*(one(s) for s in submissions)))


async def grade_one(submission: Submission, reference: Reference, options: Options) -> Grade:
    """The Grade of one submission; a bad file is a Grade too, never an exception."""
    learner, exercise = submission.learner, submission.exercise
    if submission.path is None:
        return Grade(learner, exercise, "missing", None, (f"not handed in: no {exercise}_*.ipynb in the folder",))
    try:
        notebook = read_submission(submission.path)
    except BadSubmission as bad:
        return Grade(learner, exercise, "error", None, (str(bad),))
    notes = answer_notes(notebook, reference)
    executed = prepare(notebook, reference)
    started = time.perf_counter()
    run = await execute(executed, options)
    seconds = round(time.perf_counter() - started, 2)
    write_executed(executed, options.executed / learner / submission.path.name)
    status, feedback = judge_run(executed, run, options.timeout)
    return Grade(learner, exercise, status, seconds, (*notes, *feedback))


async def execute(notebook: nbformat.NotebookNode, options: Options) -> Run:
    """Run the notebook in a fresh kernel in an empty folder; say how it ended instead of raising."""
    run = Run()
    deadline: list[float] = []

    def cell_timeout(cell: Any) -> int:
        if not deadline:  # the clock starts with the first cell, after the kernel is up
            deadline.append(time.monotonic() + options.timeout)
        left = math.ceil(deadline[0] - time.monotonic())
        return max(left, GRADER_SECONDS) if cell is notebook.cells[-1] else max(left, 1)

    def started(cell: Any, cell_index: int, **_: Any) -> None:
        run.cell_index = cell_index

    with tempfile.TemporaryDirectory(prefix="agentlab-grade-") as folder:
        client = NotebookClient(
            notebook,
            km=kernel_manager(options),
            kernel_name="python3",
            timeout_func=cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=False,
            shutdown_kernel="immediate",
            record_timing=False,
            resources={"metadata": {"path": folder}},
            on_cell_execute=started,
        )
        try:
            # the kernel's own stderr is noise here (its outputs reach the notebook through the kernel protocol)
            await client.async_execute(env=kernel_environment(options), stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            run.ended = "timeout"
        except DeadKernelError:
            run.ended = "died"
        except Exception as exc:  # the kernel would not start, or nbclient broke: this notebook's row says so
            run.ended = f"could not run the notebook: {type(exc).__name__}: {str(exc)[:200]}"
    return run


def kernel_manager(options: Options) -> AsyncKernelManager | None:
    """A manager for a forked kernel, or None to let nbclient start a python3 kernel from scratch."""
    if options.kernels is None:
        return None
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=options.kernels)


def kernel_environment(options: Options) -> dict[str, str]:
    """The learner's kernel: offline, on the shared server, at the grader's time scale, with no keys."""
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_API_KEY", "_TOKEN"))}
    env.pop("NBGRADER_EXECUTION", None)
    env.update(
        AGENTLAB_BACKEND="offline",
        AGENTLAB_OFFLINE_URL=options.server_url,
        AGENTLAB_TIME_SCALE=str(options.time_scale),
        MPLBACKEND="Agg",
    )
    return env


def judge_run(notebook: nbformat.NotebookNode, run: Run, timeout: float) -> tuple[Status, list[str]]:
    """The status and feedback: the grader cell's verdict, with the learner's errors named before it."""
    learner_cells = notebook.cells[:-1]
    if run.ended == "timeout":
        return "timeout", [f"{describe_cell(learner_cells, run.cell_index)} did not finish within {timeout:g} s"]
    if run.ended == "died":
        where = describe_cell(learner_cells, run.cell_index)
        return "error", [f"the kernel died while running {where} (os._exit, a crash, or out of memory)"]
    if run.ended != "ok":
        return "error", [run.ended]
    errors = cell_errors(learner_cells)
    verdict = read_verdict(notebook.cells[-1])
    if verdict is None:
        return "error", [*errors, "the grader's check did not run: " + grader_problem(notebook.cells[-1])]
    messages = [str(m) for m in verdict.get("messages", [])]
    if verdict.get("passed") is True:
        return "passed", [*errors, *messages]
    return ("error" if errors else "failed"), [*errors, *messages]


def describe_cell(cells: list[Any], index: int) -> str:
    if not 0 <= index < len(cells):
        return "the grader's check cell"
    lines = [line.strip() for line in source_of(cells[index]).splitlines() if line.strip()]
    return f"cell {index + 1} (`{lines[0][:60]}`)" if lines else f"cell {index + 1}"


def cell_errors(cells: list[Any]) -> list[str]:
    """``cell 3 (`...`) raised NameError: ...`` for each learner cell that raised."""
    found = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
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
