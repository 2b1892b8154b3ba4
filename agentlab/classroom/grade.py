"""``python -m agentlab grade SUBMISSIONS --out REPORT``: the whole class, graded into one report.

The grader starts one offline server and points every kernel at it. Kernels run at ``--time-scale`` (default
0.1): the checks judge from the results' own time stamps, with slack that scales with the durations, so a "3 s"
conversation may take 0.3 s and the verdict is the same. Not smaller: a busy machine adds overheads that do not
shrink with the scale (a fresh loop's first request), and at 0.05 exercises 01 and 02 then can refuse a right
answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from tqdm import tqdm

from agentlab.classroom.discover import Submission, discover
from agentlab.classroom.forking import forked_kernels, kernel_environment
from agentlab.classroom.grades import Grade
from agentlab.classroom.reference import Reference, load_reference, reference_notebooks
from agentlab.errors import AgentLabError
from agentlab.offline import config_from_env, start


def grade_command(args: argparse.Namespace) -> int:
    """Exit 0 once the report is written, whatever the learners scored; 2 when the grader cannot run."""
    try:
        check_numbers(args)
        wanted = [e.strip().zfill(2) for e in args.exercises.split(",") if e.strip()] or None
        submissions = discover(args.submissions, wanted)
        grades = grade_class(submissions, args.out, args.jobs, args.timeout, args.time_scale, not args.no_fork)
    except (AgentLabError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from agentlab.classroom.report import write_report

    write_report(grades, args.out)
    passed = sum(g.status == "passed" for g in grades)
    print(f"{passed}/{len(grades)} passed; wrote {args.out / 'grades.csv'} and {args.out / 'report.html'}")
    return 0


def check_numbers(args: argparse.Namespace) -> None:
    if args.jobs < 1 or args.timeout <= 0 or args.time_scale <= 0:
        raise AgentLabError("--jobs must be at least 1, and --timeout and --time-scale greater than 0")


def grade_class(
    submissions: list[Submission], out: Path, jobs: int, timeout: float, time_scale: float, fork: bool = True
) -> list[Grade]:
    """Grade every submission against one shared offline server, with a progress bar; forked kernels unless
    ``fork`` is False (then each kernel starts from scratch, about 2.5 s of CPU more per notebook)."""
    references = {e: load_reference(e, p) for e, p in reference_notebooks().items()}
    references.update({s.exercise: Reference(s.exercise) for s in submissions if s.exercise not in references})
    config = config_from_env({**os.environ, "AGENTLAB_TIME_SCALE": str(time_scale)})
    with start(config) as server:
        env = kernel_environment(server.base_url, time_scale)
        with forked_kernels(env) if fork else nullcontext(lambda: None) as kernels:
            # nbclient and nbformat load while the zygote warms up
            from agentlab.classroom.execute import Options, grade_all

            options = Options(timeout, time_scale, server.base_url, out / "executed", kernels())
            with tqdm(total=len(submissions), desc="grading", unit="notebook") as bar:
                return asyncio.run(grade_all(submissions, references, options, jobs, lambda _: bar.update()))
