"""The layers of design §9, kept by the import graph: import order is reading order.

    errors, settings, bucket → records → tools → client, model, budget → agent → runners, batch
    → views (charts, live views, traces) → exercises, classroom → CLI, demo, bench

A module may import its own layer and the layers below it, never one above, and no module may reach itself
again through its imports (no cycle, counting imports inside functions). ``agentlab/offline/`` is a leaf: of
agentlab outside itself it imports only ``agentlab.settings`` and ``agentlab.bucket`` (the one settings reader and
the one token bucket), and anyone may use it, but only lazily (the client starts it on first use):
tests/integration/test_import_agentlab.py checks, in a fresh interpreter, that ``import agentlab`` loads no
server, pyplot, widgets or benchmark.

A new module must be placed in ``LAYERS`` below; an unknown one fails with a message that says so.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "agentlab"

# Bottom to top. Patterns are module names; "x.*" also matches x's submodules. The facade (`agentlab`, that is
# agentlab/__init__.py) sits just above the runners: views and lessons may use it, nothing below may.
LAYERS: list[tuple[float, tuple[str, ...]]] = [
    (0, ("agentlab.errors", "agentlab.settings", "agentlab.clock")),
    # THE token bucket and the token rule: the client's budget and the offline server both use them
    (0.5, ("agentlab.bucket",)),
    (1, ("agentlab.records",)),
    # the live views read only records: the runners make one from progress=... (no registry of names)
    (1.5, ("agentlab.views.live",)),
    (2, ("agentlab.tools", "agentlab.tools.*")),
    # model.py is the one seam for a model call; budget.py paces model calls (Agent.run(budget=...) takes one),
    # so both sit below the agent, beside the client
    (3, ("agentlab.client", "agentlab.model", "agentlab.budget")),
    (4, ("agentlab.agent",)),
    (5, ("agentlab.runners", "agentlab.batch", "agentlab.batch.*", "agentlab.cluster")),
    (5.5, ("agentlab",)),
    (6, ("agentlab.charts", "agentlab.views", "agentlab.views.gauges", "agentlab.traces")),
    (7, ("agentlab.exercises", "agentlab.exercises.*", "agentlab.classroom", "agentlab.classroom.*")),
    (8, ("agentlab.__main__", "agentlab.demo", "agentlab.bench", "agentlab.bench.*")),
]
LEAF = "agentlab.offline"
LEAF_MAY_IMPORT = ("agentlab.settings", "agentlab.bucket")


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
            # `from agentlab.x import y` imports the submodule agentlab.x.y when there is one; the package itself
            # counts only for names that are not submodules (`from agentlab import settings` is the module)
            submodules = {f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}")}
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(base)
    return {name for name in found if name == "agentlab" or name.startswith("agentlab.")}


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    names = [module_name(p) for p in MODULES]
    unknown = [name for name in names if not name.startswith(LEAF) and layer_of(name) is None]
    assert unknown == [], (
        f"{unknown} are in no layer: add each to LAYERS in tests/unit/test_layers.py, in the layer it belongs to "
        "(design §9), so that the import graph keeps the layers"
    )


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_down(path: Path) -> None:
    module = module_name(path)
    if module.startswith(LEAF):
        outside = sorted(name for name in imports_of(path) if not name.startswith(LEAF) and name not in LEAF_MAY_IMPORT)
        assert outside == [], (
            f"{module} imports {outside}: agentlab/offline is a leaf that imports only {list(LEAF_MAY_IMPORT)}"
        )
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


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (module → the modules it imports): its strongly connected components of
    more than one module, and the modules that import themselves (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = [stack.pop()]
            while component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1 or module in graph.get(module, ()):
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_in_the_package() -> None:
    """No cycle anywhere in agentlab, offline included, counting imports inside functions (design §9)."""
    names = {module_name(path) for path in MODULES}
    graph = {module_name(path): {name for name in imports_of(path) if name in names} for path in MODULES}
    assert cycles_in(graph) == [], "these modules import each other (directly or through others): untangle them"


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles_in({"a": {"a"}, "b": set()}) == [["a"]]
    assert cycles_in({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
