"""``agentlab bench``: run the registered sections, print their lines and targets, merge them into results.json.

    agentlab bench                          # every section, full size (a few minutes)
    agentlab bench --quick                  # every section, small (about a minute)
    agentlab bench --section import runners --n 10 --out /tmp/bench

Works from an installed wheel in any folder: the sections live in the package (``agentlab/bench``). In a
checkout, ``--out benchmarks`` keeps results.json where ``benchmarks/readme_table.py`` reads it (that is the
default when a ``benchmarks/`` folder is here).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import timeit
from pathlib import Path
from types import ModuleType
from typing import Any

from agentlab.bench import SECTIONS

__all__ = ["main", "run_section"]


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick, "sections": {}}
    for name in args.section or list(SECTIONS):
        print(f"\n== {name} ==", flush=True)
        module = importlib.import_module(SECTIONS[name])
        result = run_section(module, args.quick, args.n)
        report["sections"][name] = result
        print_result(result)
        if hasattr(module, "figures"):
            for path in module.figures(result, args.out):
                print(f"wrote {path}")
    path = args.out / "results.json"
    path.write_text(json.dumps(merged(report, path), indent=1) + "\n")
    print(f"\nwrote {path}")
    return 0


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


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agentlab bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about a minute in all")
    parser.add_argument("--section", nargs="+", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--n", type=int, nargs="+", help="batch sizes, for the sections that take them")
    parser.add_argument("--out", type=Path, default=default_out(), help="folder for results.json and charts")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def default_out() -> Path:
    """``benchmarks/`` in a checkout of the repository (where the README's table is made), else here."""
    checkout = Path("benchmarks")
    return checkout if (checkout / "readme_table.py").exists() else Path(".")


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


def machine() -> dict[str, Any]:
    """Where the figures were measured: figures from another machine or hour compare only as ratios."""
    import aiohttp
    import openai

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "openai": openai.__version__,
        "aiohttp": aiohttp.__version__,
        "date": datetime.date.today().isoformat(),
        "calibration_ms": calibration_ms(),
    }


def calibration_ms() -> float:
    """How fast this host runs plain Python right now: the best of 5 runs of sum(range(10**6)), in ms.

    Shared machines change speed from hour to hour. The ratios between contenders measured side by side hold;
    absolute figures (CPU per call, wall against the latency floor) move with the host. Compare runs with this.
    """
    return min(timeit.repeat("sum(range(10**6))", number=1, repeat=5)) * 1000
