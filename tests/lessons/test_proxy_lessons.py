"""Every lesson, the appendix, every exercise solution and the demo, in proxy mode, against a stand-in API.

This is what a learner with a key runs: ``AGENTLAB_BACKEND=openai``, ``OPENAI_API_KEY``, and ``OPENAI_BASE_URL``
pointing at the API (here the stand-in: the offline server with its markers off, recording what it receives).
Each notebook runs unchanged in a fresh kernel, whose agentlab starts its own proxy in front of the stand-in.

Then, over everything that was produced (every request the stand-in received, every notebook output, the
demo's output and chart), the fake key appears only in the ``Authorization`` header of the requests, and no
control marker ever reached the stand-in.

The notebooks run two at a time in subprocesses (the machine has two cores), so the module takes about a
minute at ``AGENTLAB_TIME_SCALE=0.05``.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from proxy_support import FAKE_KEY, Served, assert_key_only_in_authorization, markers_in, stand_in

pytestmark = pytest.mark.timeout(900)  # the first test waits for every run: about a minute on a quiet machine

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EVERY = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(NOTEBOOKS.glob("A[0-9]_*.ipynb"))
EVERY += sorted((NOTEBOOKS / "solutions").glob("*_solution.ipynb"))
assert len(EVERY) >= 12, "six lessons and six solutions at least: never vacuous"

# A notebook that cannot pass in proxy mode because it asserts what only the scripted model and the offline
# server's own markers guarantee: its name → the cell and the reason (see the report of issue 13).
KNOWN_FAILURES: dict[str, str] = {}
FLAKY: set[str] = set()  # names that pass on a quiet machine only: not a strict xfail

RUN_ONE = """
import sys, nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
path, out = sys.argv[1], sys.argv[2]
notebook = nbformat.read(path, as_version=4)
client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                        resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}})
try:
    client.execute()
except CellExecutionError as error:
    cell = next((i for i, c in enumerate(notebook.cells) if any(o.get("output_type") == "error"
                 for o in c.get("outputs", []))), None)
    print(f"FAILED in cell {cell}: {str(error)[-1500:]}")
    sys.exit(1)
finally:
    nbformat.write(notebook, out)
"""


@dataclass(frozen=True)
class Ran:
    returncode: int
    output: str  # what the runner printed: the failing cell and its error
    produced: str  # everything the run wrote: the executed notebook, or the demo's output and chart
    first_try: str = ""  # a run that failed two at a time is run again alone: what its first try printed


def proxy_env(upstream: Served) -> dict[str, str]:
    env = {**os.environ, "AGENTLAB_BACKEND": "openai", "OPENAI_BASE_URL": upstream.base_url}
    env |= {"OPENAI_API_KEY": FAKE_KEY, "AGENTLAB_TIME_SCALE": "0.05", "MPLBACKEND": "Agg"}
    env.pop("AGENTLAB_OFFLINE_URL", None)
    return env


def run_notebook(path: Path, out: Path, env: dict[str, str]) -> Ran:
    done = subprocess.run(
        [sys.executable, "-c", RUN_ONE, str(path), str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    produced = out.read_text(encoding="utf-8") if out.exists() else ""
    return Ran(done.returncode, done.stdout + done.stderr, produced)


def run_demo(out: Path, env: dict[str, str]) -> Ran:
    chart = out / "demo.png"
    done = subprocess.run(
        [sys.executable, "-m", "agentlab", "demo", "--out", str(chart)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    picture = chart.read_bytes().decode("latin-1") if chart.exists() else ""
    return Ran(done.returncode, done.stdout + done.stderr, done.stdout + done.stderr + picture)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Served]:
    with stand_in(0.05) as served:
        yield served


@pytest.fixture(scope="module")
def ran(upstream: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Every notebook and the demo, two at a time; one that failed runs once more, alone.

    The lessons assert timing ratios at 20x speed, which a shared 2-core machine can upset for offline and proxy
    runs alike; run alone, a notebook that still fails fails for a reason of its own.
    """
    out, env = tmp_path_factory.mktemp("proxy-runs"), proxy_env(upstream)
    by_name = {path.stem: path for path in EVERY}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_notebook, path, out / path.name, env) for name, path in by_name.items()}
        futures["demo"] = pool.submit(run_demo, out, env)
        runs = {name: future.result() for name, future in futures.items()}
    for name, first in list(runs.items()):
        if first.returncode != 0 and name not in KNOWN_FAILURES:
            again = run_demo(out, env) if name == "demo" else run_notebook(by_name[name], out / f"{name}.ipynb", env)
            runs[name] = Ran(again.returncode, again.output, again.produced + first.produced, first.output)
            if again.returncode == 0:  # say so in the warnings summary: a timing assert that a busy host upset
                warnings.warn(f"{name} passed only when run alone; two at a time: {first.output[:400]}", stacklevel=1)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(p.stem, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[p.stem], strict=p.stem not in FLAKY))
        if p.stem in KNOWN_FAILURES
        else p.stem
        for p in EVERY
    ],
)
def test_the_notebook_runs_top_to_bottom_in_proxy_mode(ran: dict[str, Ran], name: str) -> None:
    assert ran[name].returncode == 0, ran[name].output


@pytest.mark.slow
def test_the_demo_runs_in_proxy_mode(ran: dict[str, Ran]) -> None:
    demo = ran["demo"]
    assert demo.returncode == 0, demo.output
    assert demo.output.count("fulfilled") == 5 and demo.output.count("rejected") == 1  # the one failing on purpose
    assert "speedup" in demo.output


@pytest.mark.slow
def test_no_marker_reaches_the_api_and_the_key_only_in_authorization(ran: dict[str, Ran], upstream: Served) -> None:
    received = [r for r in upstream.received if r.path.startswith("/v1/")]
    assert len(received) > 100, "every lesson talked to the stand-in"
    assert any(r.method == "POST" and r.path == "/v1/files" for r in received), (
        "lesson 08's batch files are scanned too"
    )
    assert markers_in(received) == []
    assert_key_only_in_authorization(received)


@pytest.mark.slow
def test_the_key_is_in_nothing_the_runs_produced(ran: dict[str, Ran]) -> None:
    assert all(run.produced for run in ran.values()), "every run produced something to scan"
    leaks = [name for name, run in ran.items() if FAKE_KEY in run.produced + run.output]
    assert leaks == []
