"""Run each submitted notebook top to bottom in a fresh kernel and turn what happened into its rows (Grade).

``jobs`` notebooks run at once in one event loop (nbclient's async API), each with ``timeout`` seconds in
all, against the grader's one offline server; each kernel is shut down when its notebook ends. A check's
verdict is the grader's own (answers.judge_answers), on the answers that its cell after the check cell sent
while the kernel still ran: a part keeps its verdict when a later part hangs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from agentlab.classroom.answers import ANSWERS_MIME, judge_answers
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
from agentlab.exercises import CHECK_MIME, Feedback

GRADER_SECONDS = 30  # the grader's own cell gets this much even when the learner used up the time limit
OUTPUT_LIMIT = 2_000_000  # characters of output the learner's cells may show per notebook; the rest is cut
T = TypeVar("T")
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
    scratch: Path  # the run's temporary folder (grade.run_folder): each notebook works in a folder of its own
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
    """What happened while one notebook ran: which cell was running, how it ended, and how much it showed."""

    cell_index: int = -1
    ended: str = "ok"  # ok, timeout, died, or what broke
    shown: int = 0  # characters of output kept from the learner's cells
    cut: bool = False  # some output went past OUTPUT_LIMIT and was dropped
    verdicts: dict[int, dict[str, Any]] = field(default_factory=dict)  # grader cell index -> the check's verdict


class CappedClient(NotebookClient):
    """nbclient, keeping at most OUTPUT_LIMIT characters of the learner's outputs per notebook: a cell that
    prints 100 MB must not make a 100 MB executed copy and hold it in the grader's memory. The grader's own
    cells are not capped (their verdict is needed); one note says where the output was cut."""

    run: Run

    def output(
        self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> nbformat.NotebookNode | None:
        if self.nb.cells[cell_index].metadata.get("agentlab") or msg["msg_type"] == "error":
            return super().output(outs, msg, display_id, cell_index)
        size = output_size(msg.get("content", {}))
        if self.run.shown + size <= OUTPUT_LIMIT:
            self.run.shown += size
            return super().output(outs, msg, display_id, cell_index)
        left = OUTPUT_LIMIT - self.run.shown
        if msg["msg_type"] == "stream" and left > 0:  # what fits of a long print is kept
            self.run.shown = OUTPUT_LIMIT
            kept = {**msg["content"], "text": msg["content"]["text"][:left]}
            super().output(outs, {**msg, "content": kept}, None, cell_index)
        if not self.run.cut:
            self.run.cut = True
            note = f"[the grader cut the output here: more than {OUTPUT_LIMIT:,} characters in this notebook]\n"
            outs.append(nbformat.v4.new_output("stream", name="stderr", text=note))  # type: ignore[no-untyped-call]
        return None


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
    if run.cut:
        notes.append(f"the notebook showed more than {OUTPUT_LIMIT:,} characters of output: the rest was cut")
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

    def started(cell: Any, cell_index: int, **_: Any) -> None:
        if stop.requested:  # a kernel that came up after the stop runs no cell
            raise RunStopped
        stop.kernels.add(km)  # only now: nbclient leaves its exit hook behind when a kernel dies as it starts
        run.cell_index = cell_index

    km = kernel_manager(options)
    with tempfile.TemporaryDirectory(prefix="notebook-", dir=options.scratch) as folder:
        client = CappedClient(
            notebook,
            km=km,
            timeout_func=total_timeout(options.timeout),
            allow_errors=True,
            interrupt_on_timeout=False,
            shutdown_kernel="immediate",
            record_timing=False,
            resources={"metadata": {"path": folder}},
            on_cell_execute=started,
            on_cell_executed=lambda cell, cell_index, **_: judge_cell(cell, cell_index, run),
        )
        client.run = run
        try:
            # cleanup_kc: nbclient shuts down at the end a kernel whose manager it did not make, as here.
            # The kernel's own stderr is noise here (its outputs reach the notebook through the kernel protocol).
            # TMPDIR: what a notebook keeps in tempfile.gettempdir() is its own, also without the sandbox
            env = {**options.env, "TMPDIR": folder}
            await client.async_execute(cleanup_kc=True, env=env, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            run.ended = "timeout"
        except DeadKernelError:
            run.ended = "died"
        except Exception as exc:  # the kernel would not start, or nbclient broke: this notebook's row says so
            run.ended = f"could not run the notebook: {type(exc).__name__}: {str(exc)[:200]}"
        finally:
            stop.kernels.discard(km)
    return run


def output_size(content: dict[str, Any]) -> int:
    """About how many characters an output message adds to the notebook (no copy of a long text is made)."""
    if isinstance(content.get("text"), str):
        return len(content["text"])
    data = content.get("data", {})
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values()) if data else 100


def total_timeout(timeout: float) -> Callable[[Any], float]:
    """nbclient's timeout per cell: what is left of the notebook's ``timeout``, so that a cell that starts after
    the deadline times out at once (nbclient's poll needs a positive number); the grader's own cell always gets
    GRADER_SECONDS. The clock starts with the first cell, after the kernel is up."""
    deadline: list[float] = []

    def cell_timeout(cell: Any) -> float:
        if not deadline:
            deadline.append(time.monotonic() + timeout)
        left = deadline[0] - time.monotonic()
        return max(left, GRADER_SECONDS) if cell.metadata.get("agentlab") else max(left, 0.001)

    return cell_timeout


async def judge_cell(cell: Any, cell_index: int, run: Run) -> None:
    """A grader cell has run: judge its answers here and now (a learner's server is still up), and show the
    verdict in its place in the executed copy."""
    if (exercise := cell.metadata.get("agentlab", {}).get("grader")) is None:
        return
    payload = next((o["data"][ANSWERS_MIME] for o in cell.outputs if ANSWERS_MIME in o.get("data", {})), None)
    try:
        verdict = await asyncio.wait_for(in_daemon_thread(judge_answers, exercise, payload), GRADER_SECONDS)
    except TimeoutError:
        verdict = {"exercise": exercise, "passed": False, "messages": ["the check took too long to judge"]}
    run.verdicts[cell_index] = verdict
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    cell.outputs = [*errors, verdict_output(verdict)] if verdict["passed"] is not None else errors


async def in_daemon_thread(function: Callable[..., T], *arguments: Any) -> T:
    """``function(*arguments)`` in a thread of its own that never holds the grader up: a check kept busy by
    strange answers is given up after GRADER_SECONDS, and the grader still ends (asyncio.to_thread's threads
    are waited for when the loop closes)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        def once() -> None:
            if not future.done():  # given up on already (a timeout cancels it)
                outcome()

        with suppress(RuntimeError):  # the loop is closed: nobody waits for this any more
            loop.call_soon_threadsafe(once)

    def work() -> None:
        try:
            result = function(*arguments)
        except BaseException as exc:
            settle(functools.partial(future.set_exception, exc))
        else:
            settle(functools.partial(future.set_result, result))

    threading.Thread(target=work, name="agentlab-judge", daemon=True).start()
    return await future


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
        if run.ended != "ok" and index >= run.cell_index and index not in run.verdicts:
            judged[exercise] = how_it_ended(cells, run, timeout)
        else:
            judged[exercise] = judge_verdict(run.verdicts.get(index), cell, cell_errors(cells, index))
    return judged


def how_it_ended(cells: list[Any], run: Run, timeout: float) -> Judged:
    where = describe_cell(cells, run.cell_index)
    if run.ended == "timeout":
        return "timeout", [f"{where} did not finish within {timeout:g} s"]
    if run.ended == "died":
        return "error", [f"the kernel died while running {where} (os._exit, a crash, or out of memory)"]
    return "error", [run.ended]


def judge_verdict(verdict: dict[str, Any] | None, cell: Any, errors: list[str]) -> Judged:
    if verdict is None or verdict["passed"] is None:
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


def verdict_output(verdict: dict[str, Any]) -> nbformat.NotebookNode:
    """The grader's verdict as a check shows it: for the teacher who opens the executed copy."""
    feedback = Feedback(verdict["passed"], tuple(verdict["messages"]), verdict["exercise"])
    data = {CHECK_MIME: verdict, "text/plain": str(feedback), "text/html": feedback._repr_html_()}
    return nbformat.v4.new_output("display_data", data=data)  # type: ignore[no-untyped-call,no-any-return]


def grader_problem(cell: Any) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {str(output.get('evalue', ''))[:160]}"
    return "it showed no verdict"


def write_executed(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Written beside, then renamed: a grader killed meanwhile leaves no half-written notebook."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    nbformat.write(notebook, str(partial))  # type: ignore[no-untyped-call]
    partial.replace(path)
