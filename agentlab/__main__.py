"""The command line: ``python -m agentlab demo | serve | bench | grade | handout``.

- ``demo``: five math conversations serially, concurrently, then settled with one failure: a timing table, a PNG.
- ``serve``: the offline Responses API server in its own process.
- ``bench``: the benchmark of ``agentlab/bench`` (import time, agentlab against a raw loop and the Agents SDK, …).
- ``grade SUBMISSIONS --out REPORT``: a class's exercise notebooks, graded into one report.
- ``handout --out DIR``: the lessons and exercises for learners (``--with-solutions`` for teachers).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from agentlab.classroom.course import handout_command  # the standard library only: cheap to load here
from agentlab.offline.serve import add_serve_arguments, serve_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serial vs concurrent vs settled on 5 math conversations")
    demo.add_argument("--out", type=Path, default=Path("agentlab-demo-timeline.png"), help="where to write the PNG")
    add_serve_arguments(commands.add_parser("serve", help="run the offline Responses API server"))
    commands.add_parser("bench", help="run the benchmark (agentlab bench --help for its options)", add_help=False)
    add_classroom_commands(commands)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return bench_command(rest)  # only the benchmark takes arguments it parses itself
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "serve":
        return serve_command(args)
    if args.command in ("grade", "handout"):
        return int(args.run(args))
    from agentlab.demo import run_demo  # imported late: matplotlib is slow to import

    return run_demo(args.out)


def bench_command(argv: list[str]) -> int:
    from agentlab.bench import main as bench_main  # the top layer: loaded only for this command

    return bench_main(argv)


# -- grade and handout: their modules load only when one of them runs -------------------------------------------


def add_classroom_commands(commands: Any) -> None:
    """Add ``grade`` and ``handout`` to the ``python -m agentlab`` subcommands; each sets ``args.run``."""
    grade = commands.add_parser("grade", help="grade a class's exercise notebooks into one report")
    grade.add_argument("submissions", type=Path, help="one folder per learner (or nbgrader's submitted/)")
    grade.add_argument("--out", type=Path, required=True, help="the report folder (grades.csv, gradebook.csv, ...)")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks at once (default: cores)")
    grade.add_argument("--timeout", type=float, default=120.0, help="seconds of cell time per notebook (120)")
    grade.add_argument("--time-scale", type=float, default=0.1, help="AGENTLAB_TIME_SCALE of the kernels (0.1)")
    grade.add_argument("--exercises", default="", help="comma-separated, e.g. 01,02 (default: all handed in)")
    grade.add_argument("--no-fork", action="store_true", help="start each kernel from scratch (slower)")
    grade.set_defaults(run=run_grade)
    handout = commands.add_parser("handout", help="copy the lessons and exercises for learners")
    handout.add_argument("--out", type=Path, required=True, help="the folder to fill (created if needed)")
    handout.add_argument("--with-solutions", action="store_true", help="add notebooks/solutions/ (for teachers)")
    handout.set_defaults(run=handout_command)


def run_grade(args: argparse.Namespace) -> int:
    skip_slow_optional_import()
    from agentlab.classroom.grade import grade_command  # nbclient, tqdm and the server load only now

    return grade_command(args)


def skip_slow_optional_import() -> None:
    """nbformat's jsonschema imports ``rfc3987_syntax`` when installed, which compiles a grammar for 2-6 s of
    CPU; it only checks the "iri" string format, which no notebook uses, so the grader's process goes without."""
    if "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]


if __name__ == "__main__":
    sys.exit(main())
