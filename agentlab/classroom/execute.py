"""Run each submitted notebook top to bottom in a fresh kernel and turn what happened into a Grade.

Several notebooks run at once (``jobs``) in one event loop with nbclient's async API; each gets ``timeout``
seconds of cell time. Every kernel talks to the one offline server the grader started (``AGENTLAB_OFFLINE_URL``)
at the grader's time scale. The verdict is read only from the grader's own last cell.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from agentlab.classroom.discover import Submission
from agentlab.classroom.forking import KERNEL_NAME, kernel_environment
from agentlab.classroom.grades import Grade, Status
from agentlab.classroom.notebook import BadSubmission, answer_notes, prepare, read_submission
from agentlab.classroom.reference import Reference, source_of
from agentlab.exercises import CHECK_MIME

GRADER_SECONDS = 30  # the grader's own cell gets this much even when the learner used up the time limit


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
    done: Callable[[list[Grade]], None],
) -> list[Grade]:
    """Grade every submission, ``jobs`` at a time, calling ``done`` as each one finishes; in input order."""
    slots = asyncio.Semaphore(max(1, jobs))

    async def one(submission: Submission) -> list[Grade]:
        async with slots:
            reference = references.get(submission.exercise, Reference(submission.exercise))
            grades = await grade_one(submission, reference, options)
        done(grades)
        return grades

    return [grade for grades in await asyncio.gather(*(one(s) for s in submissions)) for grade in grades]


async def grade_one(submission: Submission, reference: Reference, options: Options) -> list[Grade]:
    """One Grade per exercise of the submitted notebook; a bad file is a Grade too, never an exception."""
    learner, exercises = submission.learner, reference.exercises
    if submission.path is None:
        missing = (f"not handed in: no {submission.exercise}_*.ipynb in the folder",)
        return [Grade(learner, exercise, "missing", None, missing) for exercise in exercises]
    try:
        notebook = read_submission(submission.path)
    except BadSubmission as bad:
        return [Grade(learner, exercise, "error", None, (str(bad),)) for exercise in exercises]
    notes = answer_notes(notebook, reference)
    executed = prepare(notebook, reference)
    started = time.perf_counter()
    run = await execute(executed, options)
    seconds = round(time.perf_counter() - started, 2)
    write_executed(executed, options.executed / learner / submission.path.name)
    learner_cells = len(executed.cells) - len(exercises)
    return [
        Grade(learner, exercise, status, seconds, (*notes, *feedback))
        for exercise, (status, feedback) in zip(
            exercises, judge_run(executed, run, options.timeout, learner_cells), strict=True
        )
    ]


async def execute(notebook: nbformat.NotebookNode, options: Options) -> Run:
    """Run the notebook in a fresh kernel in an empty folder; say how it ended instead of raising."""
    run = Run()
    deadline: list[float] = []

    def cell_timeout(cell: Any) -> int:
        if not deadline:  # the clock starts with the first cell, after the kernel is up
            deadline.append(time.monotonic() + options.timeout)
        left = math.ceil(deadline[0] - time.monotonic())
        return max(left, GRADER_SECONDS) if cell.metadata.get("agentlab") else max(left, 1)

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
            await client.async_execute(
                env=kernel_environment(options.server_url, options.time_scale), stderr=subprocess.DEVNULL
            )
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


Judged = tuple[Status, list[str]]  # a grader cell's status and feedback


def judge_run(notebook: nbformat.NotebookNode, run: Run, timeout: float, learner_cells: int) -> list[Judged]:
    """Per grader cell, the status and feedback: its verdict, with the learner's errors named before it."""
    learner, graders = notebook.cells[:learner_cells], notebook.cells[learner_cells:]
    if run.ended == "timeout":
        ended: Judged = "timeout", [f"{describe_cell(learner, run.cell_index)} did not finish within {timeout:g} s"]
    elif run.ended == "died":
        where = describe_cell(learner, run.cell_index)
        ended = "error", [f"the kernel died while running {where} (os._exit, a crash, or out of memory)"]
    else:
        ended = "error", [run.ended]
    if run.ended != "ok":
        return [ended for _ in graders]
    errors = cell_errors(learner)
    return [judge_verdict(cell, errors) for cell in graders]


def judge_verdict(cell: Any, errors: list[str]) -> Judged:
    verdict = read_verdict(cell)
    if verdict is None:
        return "error", [*errors, "the grader's check did not run: " + grader_problem(cell)]
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
