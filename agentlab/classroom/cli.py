"""The ``grade`` and ``handout`` subcommands' arguments; their modules load only when one of them runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from agentlab.classroom.course import handout_command  # the standard library only: cheap to load here


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
