"""The benchmark, shipped in the package: ``agentlab bench [--quick] [--section NAME ...]``.

It is a small registry of *sections*. Each section is a module with one function::

    def run(quick: bool) -> dict[str, Any]: ...

that measures one thing and returns plain JSON: at least ``"lines"`` (the table lines to print, a list of
str) and ``"targets"`` (a list of ``{"figure": str, "value": float, "target": "<= 3" | ">= 1000", "pass":
bool}``), and any figures of its own. ``quick`` asks for a run of under a minute. A section whose ``run`` also
takes ``sizes`` gets the ``--n`` batch sizes of the command line. A section may also define
``figures(result: dict, out: Path) -> list[Path]`` to write charts beside ``results.json``.

To add a section, write the module and add one line to ``SECTIONS``. Nothing here is imported by
``import agentlab``: the benchmark is the top layer, and it is loaded only by ``agentlab bench``.
"""

from __future__ import annotations

__all__ = ["SECTIONS"]

# name → module, in the order they run and print.
SECTIONS: dict[str, str] = {
    "import": "agentlab.bench.importtime",
    "runners": "agentlab.bench.runners",
    "proxy": "agentlab.bench.proxy",
    "streaming": "agentlab.bench.streaming",
    "budgets": "agentlab.bench.budgets",
    "grading": "agentlab.bench.grading",
    "traces": "agentlab.bench.traces",
}
