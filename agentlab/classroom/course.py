"""The course's notebooks, wherever agentlab is installed, and ``python -m agentlab handout --out DIR``.

``notebooks/`` in the repository is the one source. A wheel carries a copy of it, ``agentlab/course/``, made when
the wheel is built (``pyproject.toml``); a checkout or an editable install reads ``notebooks/`` itself. The
handout keeps the course's places, so links between notebooks work; solutions only with ``--with-solutions``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from agentlab.errors import ConfigurationError

PACKAGED = Path(__file__).resolve().parent.parent / "course"  # in an installed wheel
CHECKOUT = Path(__file__).resolve().parent.parent.parent / "notebooks"  # in a clone of the repository
EXERCISE_FILE = re.compile(r"^(\d{2}[a-z]?)_[^/]*\.ipynb$")  # 01_…, 02b_…


def course_folder() -> Path:
    """The folder of the course's notebooks: the package's copy, or else the checkout's ``notebooks/``."""
    for folder in (PACKAGED, CHECKOUT):
        if (folder / "exercises").is_dir():
            return folder
    raise ConfigurationError(
        f"the course's notebooks are missing (neither {PACKAGED} nor {CHECKOUT} exists): reinstall agentlab"
    )


def exercise_of(file_name: str) -> str | None:
    """``"01"`` for ``01_serial_baseline_exercise.ipynb``, ``"02b"`` for ``02b_…``; None for any other file."""
    match = EXERCISE_FILE.match(file_name)
    return match.group(1) if match else None


def exercise_notebooks() -> dict[str, Path]:
    """The course's exercise notebooks by exercise number: the references the grader trusts."""
    found: dict[str, Path] = {}
    for path in sorted((course_folder() / "exercises").glob("*.ipynb")):
        if (exercise := exercise_of(path.name)) is not None:
            found.setdefault(exercise, path)
    return found


def solution_of(exercise: Path) -> Path:
    """The solution notebook of a course exercise notebook."""
    return exercise.parent.parent / "solutions" / exercise.name.replace("_exercise", "_solution")


def course_notebook_names() -> set[str]:
    """The lessons', the appendix's and the solutions' file names: a learner may keep them, never to grade."""
    folder = course_folder()
    return {p.name for p in [*folder.glob("*.ipynb"), *(folder / "solutions").glob("*.ipynb")]}


def refuse_inside(out: Path, folder: Path, what: str) -> None:
    """A ConfigurationError when ``out`` is ``folder`` or inside it."""
    if out.resolve() == folder.resolve() or folder.resolve() in out.resolve().parents:
        raise ConfigurationError(f"--out {out} is inside {what} ({folder}): choose a folder outside it")


def handout_command(args: argparse.Namespace) -> int:
    try:
        copied = make_handout(args.out, with_solutions=args.with_solutions)
    except (ConfigurationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"copied {len(copied)} notebooks to {args.out}" + (" (with solutions)" if args.with_solutions else ""))
    return 0


def make_handout(out: Path, *, source: Path | None = None, with_solutions: bool = False) -> list[Path]:
    """Copy the lessons, the appendix, the exercises (and the solutions if asked) into ``out``; the files written."""
    source = source or course_folder()
    refuse_inside(out, source, "the course's notebooks")
    lessons = sorted(source.glob("[0-9][0-9]_*.ipynb")) + sorted(source.glob("A[0-9]*_*.ipynb"))
    solutions = sorted((source / "solutions").glob("*.ipynb")) if with_solutions else []
    written = []
    for path in lessons + sorted((source / "exercises").glob("*.ipynb")) + solutions:
        relative = path.relative_to(source)
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
