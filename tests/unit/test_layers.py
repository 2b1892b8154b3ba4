"""The layers of design §9, kept by the import graph: import order is reading order.

    errors → results, events → tools → client, budget → agent → runners, batch → views (charts, progress, lanes)
    → exercises, classroom → CLI, demo, bench

A module may import its own layer and the layers below it, never one above. ``agentlab/offline/`` is a leaf:
it imports nothing of agentlab outside itself, and anyone may use it, but only lazily (the client starts it on
first use), which the first test checks: ``import agentlab`` loads no server, pyplot, widgets or benchmark.

A new module must be placed in ``LAYERS`` below; an unknown one fails with a message that says so.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "agentlab"

# Bottom to top. Patterns are module names; "x.*" also matches x's submodules. The facade (`agentlab`, that is
# agentlab/__init__.py) sits just above the runners: views and lessons may use it, nothing below may.
LAYERS: list[tuple[float, tuple[str, ...]]] = [
    (0, ("agentlab.errors", "agentlab.settings", "agentlab.clock", "agentlab.sync")),
    (1, ("agentlab.records",)),
    # the live views read only records: the runners make one from progress=... (no registry of names)
    (1.5, ("agentlab.views.live",)),
    (2, ("agentlab.tools", "agentlab.tools.*")),
    # budget.py paces model calls (Agent.run(budget=...) takes one), so it sits below the agent, beside the client
    (3, ("agentlab.client", "agentlab.streaming", "agentlab.limits", "agentlab.budget")),
    (4, ("agentlab.agent",)),
    (5, ("agentlab.runners", "agentlab.tracker", "agentlab.batch", "agentlab.batch.*")),
    (5.5, ("agentlab",)),
    (6, ("agentlab.charts", "agentlab.views", "agentlab.views.gauges", "agentlab.traces")),
    (7, ("agentlab.exercises", "agentlab.exercises.*", "agentlab.classroom", "agentlab.classroom.*")),
    (8, ("agentlab.__main__", "agentlab.demo", "agentlab.bench", "agentlab.bench.*")),
]
LEAF = "agentlab.offline"

# What `import agentlab` must not load (nor any submodule of these).
HEAVY = ("agentlab.offline", "aiohttp.web", "matplotlib.pyplot", "ipywidgets", "agentlab.bench", "opentelemetry")


def test_import_agentlab_loads_no_server_pyplot_widgets_or_bench() -> None:
    code = "import sys, json, agentlab; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(proc.stdout)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"import agentlab loaded {heavy}: import them where they are used, not at module level"


def layer_of(module: str) -> float | None:
    for layer, patterns in LAYERS:
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return layer
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every agentlab module that ``path`` imports, at module level or inside a function (lazily)."""
    return imports_in(path.read_text(), module_name(path), is_package=path.name == "__init__.py")


def imports_in(source: str, module: str, *, is_package: bool) -> set[str]:
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: resolve it against this module's package
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            # `from agentlab.x import y` imports the submodule agentlab.x.y when there is one
            found |= {f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}")}
    return {name for name in found if name == "agentlab" or name.startswith("agentlab.")}


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    names = [module_name(p) for p in MODULES]
    unknown = [name for name in names if not name.startswith(LEAF) and layer_of(name) is None]
    assert unknown == [], (
        f"{unknown} are in no layer: add each to LAYERS in tests/test_layers.py, in the layer it belongs to "
        "(design §9), so that the import graph keeps the layers"
    )


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_down(path: Path) -> None:
    module = module_name(path)
    if module.startswith(LEAF):
        outside = sorted(name for name in imports_of(path) if not name.startswith(LEAF))
        assert outside == [], f"{module} imports {outside}: agentlab/offline is a leaf that imports nothing else"
        return
    mine = layer_of(module)
    if mine is None:
        pytest.skip("no layer yet: test_every_module_has_a_layer says so")
    upward = sorted(
        f"{name} (layer {layer_of(name)})"
        for name in imports_of(path)
        if not name.startswith(LEAF) and (layer_of(name) is None or layer_of(name) > mine)  # type: ignore[operator]
    )
    assert upward == [], f"{module} (layer {mine}) imports {upward}: an import may only point down (design §9)"


def test_the_checker_sees_lazy_relative_and_submodule_imports() -> None:
    """The checker itself can fail: imports inside functions, `from . import x` and `from a import module`."""
    source = "def later():\n    import agentlab.charts\nfrom . import errors\nfrom agentlab import tools\n"
    found = imports_in(source, "agentlab.runners", is_package=False)
    assert {"agentlab.charts", "agentlab.errors", "agentlab.tools"} <= found
    assert imports_in("from .. import client", "agentlab.batch.run", is_package=False) >= {"agentlab.client"}
    assert layer_of("agentlab.charts") > layer_of("agentlab.runners")  # type: ignore[operator]
    assert layer_of("agentlab.nonexistent") is None
