"""Packaging: public names, environment.yml in step with pyproject.toml, CI runs the README's test line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import agentlab

ROOT = Path(__file__).resolve().parents[2]


def normalize(requirement: str) -> str:
    """'openai[aiohttp]>=2.0' → 'openai'; names compared the way pip compares them."""
    name = re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(agentlab) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(agentlab, name)).__name__ == "module"}
    assert set(agentlab.__all__) == public - modules
    assert sorted(agentlab.__all__) == sorted(set(agentlab.__all__)), "no duplicates"
    for name in agentlab.__all__:
        assert getattr(agentlab, name) is not None


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {normalize(r) for r in project["dependencies"]}
    extras = {normalize(r) for group in project["optional-dependencies"].values() for r in group}
    text = (ROOT / "environment.yml").read_text()
    env_lines = text[text.index("dependencies:") :].splitlines()
    listed = {
        normalize(line.strip()[2:])
        for line in env_lines
        if line.strip().startswith("- ") and not line.strip().endswith(":") and "-e ." not in line
    }
    listed -= {"python", "pip"}
    missing = runtime - listed
    assert not missing, f"environment.yml lacks runtime dependencies of pyproject.toml: {sorted(missing)}"
    unknown = listed - runtime - extras
    assert not unknown, f"environment.yml lists packages that pyproject.toml does not: {sorted(unknown)}"
    assert any(line.strip() == "- python=3.11" for line in env_lines)
    assert any(line.strip() == "- -e ." for line in env_lines)


def test_ci_runs_exactly_the_readme_test_line() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^(pytest .*)$", readme, flags=re.MULTILINE)
    assert commands, "the README shows the test line"
    test_line = commands[0]
    ci_lines = [line.strip() for line in ci.splitlines() if line.strip().startswith("pytest")]
    assert ci_lines == [test_line]
