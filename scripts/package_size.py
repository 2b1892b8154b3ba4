"""How big agentlab is, and whether it keeps its shape: the size targets of issue 21, measured.

    python scripts/package_size.py

It prints, for all of ``agentlab/`` (offline, bench and classroom included):

- the lines and modules (``.py`` files), with a breakdown per folder;
- how many lines of agentlab ``import agentlab`` loads: a fresh interpreter imports it and the line counts of
  the files of the agentlab modules it then holds are summed (the rest loads only when asked for);
- whether the package has an import cycle, counting imports inside functions. The import graph and the cycle
  finder are the ones that tests/unit/test_layers.py checks the layers with, loaded from that file (one copy).

and PASS or MISS for each target: at most 8,500 lines, 65 modules, and 2,000 lines loaded by ``import agentlab``;
no cycle. A line is a line of the file as ``wc -l`` counts it: ``ruff format`` stays, so lines are not squeezed.
The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "agentlab"
MAX_LINES = 8_500
MAX_MODULES = 65
MAX_IMPORT_LINES = 2_000

# Run in a fresh interpreter: the files of the agentlab modules that `import agentlab` has loaded.
LOADED = """
import json, sys
import agentlab
print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items())
                        if (n == "agentlab" or n.startswith("agentlab.")) and getattr(m, "__file__", None))))
"""


def lines_of(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def loaded_by_import() -> list[Path]:
    """The agentlab files that ``import agentlab`` loads, in a fresh interpreter run from this checkout."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return [Path(name) for name in json.loads(done.stdout)]


def layers_test() -> ModuleType:
    """tests/unit/test_layers.py, loaded as a module: its import graph and its cycle finder."""
    path = ROOT / "tests" / "unit" / "test_layers.py"
    spec = importlib.util.spec_from_file_location("agentlab_test_layers", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_cycles() -> list[list[str]]:
    layers = layers_test()
    names = {layers.module_name(path) for path in layers.MODULES}
    graph = {layers.module_name(path): set(layers.imports_of(path)) & names for path in layers.MODULES}
    cycles: list[list[str]] = layers.cycles_in(graph)
    return cycles


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def main() -> int:
    files = sorted(PACKAGE.rglob("*.py"))
    lines = {path: lines_of(path) for path in files}
    folder_lines: Counter[str] = Counter()
    folder_modules: Counter[str] = Counter()
    for path, count in lines.items():
        folder = path.parent.relative_to(ROOT).as_posix() + "/"
        folder_lines[folder] += count
        folder_modules[folder] += 1
    total_lines, total_modules = sum(lines.values()), len(files)

    print(f"{'folder':<22} {'modules':>8} {'lines':>8}")
    for folder in sorted(folder_lines):
        print(f"{folder:<22} {folder_modules[folder]:>8} {folder_lines[folder]:>8,}")
    print(f"{'all of agentlab/':<22} {total_modules:>8} {total_lines:>8,}")

    loaded = loaded_by_import()
    loaded_lines = sum(lines_of(path) for path in loaded)
    print(f"\nimport agentlab loads {loaded_lines:,} lines from {len(loaded)} modules:")
    for path in sorted(loaded, key=lines_of, reverse=True):
        print(f"  {lines_of(path):>5}  {path.relative_to(ROOT).as_posix()}")

    cycles = import_cycles()
    print("\nimport cycles (imports inside functions counted):", cycles or "none")

    results = [
        (f"lines in agentlab/ <= {MAX_LINES:,}", f"{total_lines:,}", total_lines <= MAX_LINES),
        (f"modules in agentlab/ <= {MAX_MODULES}", f"{total_modules}", total_modules <= MAX_MODULES),
        (
            f"lines loaded by import agentlab <= {MAX_IMPORT_LINES:,}",
            f"{loaded_lines:,}",
            loaded_lines <= MAX_IMPORT_LINES,
        ),
        ("import cycles == 0", f"{len(cycles)}", not cycles),
    ]
    print(f"\n{'target':<42} {'measured':>9}  result")
    for target, measured, passed in results:
        print(f"{target:<42} {measured:>9}  {verdict(passed)}")
    return 0 if all(passed for _, _, passed in results) else 1


if __name__ == "__main__":
    sys.exit(main())
