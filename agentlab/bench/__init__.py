"""The benchmark, shipped in the package: ``agentlab bench [--quick] [--section NAME ...] [--n N ...] [--out DIR]``.

    agentlab bench                          # every section, full size (a few minutes)
    agentlab bench --quick                  # every section, small (about a minute)
    agentlab bench --section import runners --n 10 --out /tmp/bench

It is a small registry of *sections*. Each section is a module with one function::

    def run(quick: bool) -> dict[str, Any]: ...

that measures one thing and returns plain JSON: at least ``"lines"`` (the table lines to print, a list of
str) and ``"targets"`` (a list of ``target(...)``), and any figures of its own. ``quick`` asks for a run of
under a minute. A section whose ``run`` also takes ``sizes`` gets the ``--n`` batch sizes of the command line.
A section may also define ``figures(result: dict, out: Path) -> list[Path]`` to write charts beside
``results.json``. To add a section, write the module and add one line to ``SECTIONS``.

The section "import" is this module's own ``run``: how long ``import agentlab`` takes, and that it loads no
server, pyplot, widgets or benchmark. Nothing here is imported by ``import agentlab``: the benchmark is the
top layer, loaded only by ``agentlab bench``. It works from an installed wheel in any folder; in a checkout,
results.json goes to ``benchmarks/``, where ``benchmarks/readme_table.py`` reads it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import subprocess
import sys
import time
import timeit
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["SECTIONS", "main", "run_section", "target"]

# name → module, in the order they run and print.
SECTIONS: dict[str, str] = {
    "import": "agentlab.bench",
    "runners": "agentlab.bench.runners",
    "proxy": "agentlab.bench.proxy",
    "streaming": "agentlab.bench.streaming",
    "budgets": "agentlab.bench.budgets",
    "grading": "agentlab.bench.grading",
    "traces": "agentlab.bench.traces",
    "cluster": "agentlab.bench.cluster",
}


def target(figure: str, value: float, op: str, limit: float) -> dict[str, Any]:
    """One target of a section: ``figure``'s ``value`` against ``op`` (``"<="`` or ``">="``) ``limit``."""
    passed = value <= limit if op == "<=" else value >= limit
    return {"figure": figure, "value": value, "target": f"{op} {limit:g}", "pass": passed}


# -- The command ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick, "sections": {}}
    for name in args.section or list(SECTIONS):
        print(f"\n== {name} ==", flush=True)
        module = importlib.import_module(SECTIONS[name])
        result = run_section(module, args.quick, args.n)
        report["sections"][name] = result
        print_result(result)
        for path in module.figures(result, args.out) if hasattr(module, "figures") else []:
            print(f"wrote {path}")
    path = args.out / "results.json"
    path.write_text(json.dumps(merged(report, path), indent=1) + "\n")
    print(f"\nwrote {path}")
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agentlab bench", description="run the benchmark's sections")
    parser.add_argument("--quick", action="store_true", help="small sizes: about a minute in all")
    parser.add_argument("--section", nargs="+", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--n", type=int, nargs="+", help="batch sizes, for the sections that take them")
    checkout = Path("benchmarks")  # in a checkout of the repository, where the README's table is made
    out = checkout if (checkout / "readme_table.py").exists() else Path(".")
    parser.add_argument("--out", type=Path, default=out, help="folder for results.json and charts")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def run_section(module: ModuleType, quick: bool, sizes: list[int] | None) -> dict[str, Any]:
    """Call the section's ``run``; ``sizes`` goes only to a section whose ``run`` takes it."""
    if sizes and "sizes" in inspect.signature(module.run).parameters:
        result: dict[str, Any] = module.run(quick, sizes=sizes)
    else:
        result = module.run(quick)
    json.dumps(result)  # the contract: plain JSON; fail here, naming no file half written
    return result


def print_result(result: dict[str, Any]) -> None:
    for line in result.get("lines", []):
        print(line)
    for check in result.get("targets", []):
        mark = "PASS" if check["pass"] else "MISS"
        print(f"  {mark}  {check['figure']}: {check['value']:.2f} (target {check['target']})")


def merged(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """This run's sections over those already in ``path``: ``--section proxy`` must not erase the others.

    Each section keeps the machine and date it was measured on; a file that is missing or unreadable holds
    none, and an older file that held the runners' result alone counts as that one section.
    """
    for result in report["sections"].values():
        result["machine"] = report["machine"]
    try:
        earlier = json.loads(path.read_text())
        sections = earlier.get("sections", {"runners": earlier} if "results" in earlier else {})
    except (OSError, ValueError, AttributeError):
        sections = {}
    return {**report, "sections": {**sections, **report["sections"]}}


def machine() -> dict[str, Any]:
    """Where the figures were measured: figures from another machine or hour compare only as ratios.

    ``calibration_ms`` says how fast this host runs plain Python right now (the best of 5 runs of
    ``sum(range(10**6))``): shared machines change speed from hour to hour, so compare runs with it.
    """
    import aiohttp
    import openai

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "openai": openai.__version__,
        "aiohttp": aiohttp.__version__,
        "date": datetime.date.today().isoformat(),
        "calibration_ms": min(timeit.repeat("sum(range(10**6))", number=1, repeat=5)) * 1000,
    }


# -- Section "import" -----------------------------------------------------------------------------------------

# What `import agentlab` must not load: the offline server, aiohttp's server, pyplot, widgets, the benchmark.
HEAVY = ("agentlab.offline", "aiohttp.web", "matplotlib.pyplot", "ipywidgets", "agentlab.bench")
PROBE = "import sys, agentlab; print(__import__('json').dumps(sorted(sys.modules)))"


def run(quick: bool) -> dict[str, Any]:
    """``import agentlab`` in fresh interpreters (best of several), less an interpreter that imports nothing.

    So the figure is agentlab's own, with openai, which it needs. A lesson's first cell waits this long.
    """
    repeat = 3 if quick else 7
    empty = best_seconds("pass", repeat)
    agentlab_ms = (best_seconds("import agentlab", repeat) - empty) * 1000
    openai_ms = (best_seconds("import openai, openai.types.responses", repeat) - empty) * 1000
    proc = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    heavy = [m for m in json.loads(proc.stdout) if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    own = agentlab_ms - openai_ms  # what agentlab adds to the openai client it needs anyway
    return {
        "import_ms": agentlab_ms,
        "openai_import_ms": openai_ms,
        "interpreter_ms": empty * 1000,
        "heavy_modules_loaded": heavy,
        "lines": [
            f"import agentlab: {agentlab_ms:.0f} ms, of which import openai {openai_ms:.0f} ms and agentlab's own "
            f"{own:.0f} ms (best of {repeat}, beyond an empty interpreter's {empty * 1000:.0f} ms); "
            f"heavy modules loaded: {', '.join(heavy) or 'none'}"
        ],
        "targets": [  # 1500 ms on an idle 2-core machine; a loaded one measures more (see calibration_ms)
            target("import agentlab, ms", agentlab_ms, "<=", 1500),
            target("import agentlab beyond import openai, ms", own, "<=", 500),
            target("heavy modules loaded by import agentlab", len(heavy), "<=", 0),
        ],
    }


def best_seconds(code: str, repeat: int) -> float:
    """The best wall time of ``repeat`` fresh interpreters running ``code``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)
