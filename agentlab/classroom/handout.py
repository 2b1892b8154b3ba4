"""``python -m agentlab handout --out DIR``: what the learners get, and with ``--with-solutions`` the teacher.

The lessons, the appendix (``A1_*`` …) and the exercises keep their places (``DIR/01_….ipynb``,
``DIR/exercises/…``), so the links between them still work; the solutions go to ``DIR/solutions/`` only
when asked. Exercises are handed out without outputs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from agentlab.classroom.reference import NOTEBOOKS
from agentlab.errors import ConfigurationError


def handout_command(args: argparse.Namespace) -> int:
    try:
        copied = make_handout(args.out, with_solutions=args.with_solutions)
    except (ConfigurationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"copied {len(copied)} notebooks to {args.out}" + (" (with solutions)" if args.with_solutions else ""))
    return 0


def handout_files(source: Path = NOTEBOOKS, *, with_solutions: bool = False) -> list[Path]:
    """The notebooks to hand out, relative to ``source``."""
    lessons = sorted(source.glob("[0-9][0-9]_*.ipynb")) + sorted(source.glob("A[0-9]*_*.ipynb"))
    exercises = sorted((source / "exercises").glob("*.ipynb"))
    solutions = sorted((source / "solutions").glob("*.ipynb")) if with_solutions else []
    return [p.relative_to(source) for p in lessons + exercises + solutions]


def make_handout(out: Path, *, source: Path = NOTEBOOKS, with_solutions: bool = False) -> list[Path]:
    """Copy the handout into ``out``; the files written there."""
    files = handout_files(source, with_solutions=with_solutions)
    if not files:
        raise ConfigurationError(f"no notebooks in {source}: the handout is made from a checkout of the repository")
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise ConfigurationError(f"--out {out} is inside {source}: choose a folder outside the course's notebooks")
    written = []
    for relative in files:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.parts[0] == "exercises":
            target.write_text(without_outputs((source / relative).read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copyfile(source / relative, target)
        written.append(target)
    return written


def without_outputs(text: str) -> str:
    notebook = json.loads(text)
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
