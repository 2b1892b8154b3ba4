"""The course ships in the wheel: built from this checkout, installed apart from it, and used in an empty folder.

The wheel is built as a release is (``pip wheel``; ``pyproject.toml`` copies ``notebooks/`` to
``agentlab/course/``) and installed with ``pip install --target`` into a folder that goes first on
``PYTHONPATH``, so that ``python -m agentlab`` runs the installed copy (checked), whose package has no checkout
beside it. Its dependencies are this environment's: that a plain ``pip install agentlab`` brings them is what
``[project] dependencies`` declares (see the report of issue 22 for a fresh venv).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentlab.classroom import course

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels, target = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("agentlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "agentlab/course/exercises/01_serial_baseline_exercise.ipynb" in names
    assert not [n for n in names if ".ipynb_checkpoints" in n or "__pycache__" in n]
    done = subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], capture_output=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def agentlab(installed: Path, folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed), "AGENTLAB_TIME_SCALE": "0.05"}
    command = [sys.executable, "-m", "agentlab", *arguments]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_hands_out_and_grades_the_course_in_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    probe = [sys.executable, "-c", "import agentlab; print(agentlab.__file__)"]
    env = {**os.environ, "PYTHONPATH": str(installed)}
    assert str(installed) in subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    handout = agentlab(installed, tmp_path, "handout", "--out", "course")
    assert handout.returncode == 0, handout.stderr[-3000:]
    assert not (tmp_path / "course" / "solutions").exists()
    key = agentlab(installed, tmp_path, "handout", "--out", "key", "--with-solutions")
    assert key.returncode == 0 and (tmp_path / "key" / "solutions").is_dir(), key.stderr[-3000:]
    exercise = next((tmp_path / "course" / "exercises").glob("01_*.ipynb"))
    solution = next((tmp_path / "key" / "solutions").glob("01_*.ipynb"))
    for learner, notebook in [("solved", solution), ("untouched", exercise)]:
        (tmp_path / "class" / learner).mkdir(parents=True)
        shutil.copyfile(notebook, tmp_path / "class" / learner / exercise.name)
    graded = agentlab(installed, tmp_path, "grade", "class", "--out", "report", "--time-scale", "0.1")
    assert graded.returncode == 0, graded.stderr[-3000:]
    with (tmp_path / "report" / "grades.csv").open(encoding="utf-8") as file:
        statuses = {row["learner"]: row["status"] for row in csv.DictReader(file)}
    assert statuses == {"solved": "passed", "untouched": "failed"}


def test_the_package_copy_of_the_course_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exercises").mkdir()
    monkeypatch.setattr(course, "PACKAGED", tmp_path)
    assert course.course_folder() == tmp_path
    monkeypatch.setattr(course, "PACKAGED", tmp_path / "absent")
    assert course.course_folder() == course.CHECKOUT
    monkeypatch.setattr(course, "CHECKOUT", tmp_path / "absent")
    with pytest.raises(course.ConfigurationError, match="reinstall agentlab"):
        course.course_folder()
