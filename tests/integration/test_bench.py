"""The benchmark: its section registry, and smoke runs at tiny N from an empty folder. (Speed is its own job.)"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agentlab.bench import SECTIONS, merged, run_section


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_section_keeps_the_contract(name: str) -> None:
    module = importlib.import_module(SECTIONS[name])
    parameters = list(inspect.signature(module.run).parameters)
    assert parameters[0] == "quick", f"{SECTIONS[name]}.run must take quick first, takes {parameters}"


def test_a_section_gets_sizes_only_if_it_takes_them_and_must_return_json() -> None:
    seen: list[Any] = []

    def with_sizes(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
        seen.append(sizes)
        return {"lines": [], "targets": []}

    def without(quick: bool) -> dict[str, Any]:
        return {"lines": [], "targets": [], "when": object()}

    assert run_section(SimpleNamespace(run=with_sizes), True, [3]) == {"lines": [], "targets": []}  # type: ignore[arg-type]
    assert seen == [[3]]
    with pytest.raises(TypeError, match="not JSON serializable"):
        run_section(SimpleNamespace(run=without), True, [3])  # type: ignore[arg-type]


def bench(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``agentlab bench ...`` in a fresh process, in ``cwd`` (an empty folder: nothing of the checkout used)."""
    return subprocess.run(
        [sys.executable, "-m", "agentlab", "bench", *arguments], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def test_import_section_reports_the_import_time_from_an_empty_folder(tmp_path: Path) -> None:
    proc = bench("--quick", "--section", "import", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())  # the default --out outside a checkout: here
    section = report["sections"]["import"]
    assert section["import_ms"] > 0 and section["heavy_modules_loaded"] == []
    assert "import agentlab: " in proc.stdout and "PASS  heavy modules loaded" in proc.stdout
    assert report["machine"]["cores"] >= 1 and set(report["sections"]) == {"import"}


def test_an_unknown_section_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    proc = bench("--section", "nope", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'nope'" in proc.stderr and "runners" in proc.stderr


@pytest.mark.slow
def test_runners_section_smoke(tmp_path: Path) -> None:
    proc = bench("--quick", "--section", "runners", "--n", "2", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    section = json.loads((tmp_path / "out" / "results.json").read_text())["sections"]["runners"]
    contenders = {r["contender"] for r in section["results"]}
    expected = {"agentlab_default", "agentlab_same_client", "raw_httpx", "raw_aiohttp", "agentlab_serial"}
    if "skipping the Agents SDK" not in proc.stdout:
        expected.add("agents_sdk")
    assert contenders == expected
    assert all(r["wrong_answers"] == 0 and r["n"] == 2 for r in section["results"])
    # tracemalloc saw the second batch: two conversations in flight hold more than a kilobyte of Python objects
    assert all(r["heap_kb_per_conversation"] > 1 for r in section["results"]), section["results"]
    # like with like: every contender offered the same tool, left parallel_tool_calls unsent, took 2 requests
    sent = {"tools": ["sum_numbers"], "parallel_tool_calls": "not sent", "requests per conversation": 2}
    assert all(r["sent"] == sent for r in section["results"]), [r["sent"] for r in section["results"]]
    assert section["server_requests_per_second"] > 0 and section["sizes"] == [2]
    assert "PASS" in proc.stdout or "MISS" in proc.stdout
    assert (tmp_path / "out" / "results.png").stat().st_size > 5_000


def test_a_run_of_some_sections_keeps_the_others_in_results_json(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"machine": {"date": "old"}, "sections": {"proxy": {"lines": ["kept"]}}}))
    report = {"machine": {"date": "new"}, "quick": True, "sections": {"import": {"lines": ["fresh"]}}}
    combined = merged(report, path)
    assert combined["sections"]["proxy"] == {"lines": ["kept"]}
    assert combined["sections"]["import"] == {"lines": ["fresh"], "machine": {"date": "new"}}
    path.write_text(json.dumps({"machine": {}, "results": [], "targets": []}))  # the older runners-only file
    assert set(merged(report, path)["sections"]) == {"runners", "import"}
    path.write_text("not json")
    assert set(merged(report, path)["sections"]) == {"import"}
