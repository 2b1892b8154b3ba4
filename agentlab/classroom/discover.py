"""Find the class's submissions: one folder per learner, or nbgrader's ``submitted/<learner>/<assignment>/``.

Each learner's folder may hold any of the exercise notebooks under their own file names (as in
``notebooks/exercises/``), at any depth, so nbgrader's assignment folders work as they are. The exercises of
the class are those given with ``--exercises``, or else every exercise with a check that some learner handed
in: a learner without that file gets a ``missing`` row.
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from pathlib import Path

from agentlab.classroom.reference import exercise_of
from agentlab.errors import ConfigurationError


@dataclass(frozen=True)
class Submission:
    """One learner's file for one exercise (``path`` is None when the learner never handed it in)."""

    learner: str
    exercise: str
    path: Path | None


def discover(root: Path, exercises: list[str] | None = None) -> list[Submission]:
    """Every (learner, exercise) pair of the class, sorted, handed in or not."""
    learners = learner_folders(root)
    handed_in = {learner.name: notebooks_of(learner) for learner in learners}
    checked = checked_exercises()
    if unknown := [e for e in exercises or [] if e not in checked]:
        raise ConfigurationError(f"no check for exercise {', '.join(unknown)}: choose from {', '.join(checked)}")
    found = {exercise for files in handed_in.values() for exercise in files if exercise in checked}
    wanted = exercises or sorted(found)
    if not wanted:
        raise ConfigurationError(
            f"no exercise notebooks (named like 01_serial_baseline_exercise.ipynb) under {root}: "
            "give the folder that holds one folder per learner"
        )
    return [
        Submission(learner, exercise, handed_in[learner].get(exercise))
        for learner in sorted(handed_in)
        for exercise in wanted
    ]


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


def notebooks_of(learner: Path) -> dict[str, Path]:
    """The learner's exercise files by exercise number; of two files for one exercise, the shallower wins."""
    found: dict[str, Path] = {}
    candidates = sorted(learner.rglob("*.ipynb"), key=lambda p: (len(p.parts), str(p)))
    for path in candidates:
        hidden = any(part.startswith(".") for part in path.relative_to(learner).parts)
        exercise = exercise_of(path.name)
        if path.is_file() and not hidden and exercise is not None:
            found.setdefault(exercise, path)
    return found
