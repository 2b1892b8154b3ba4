"""Section "import": how long ``import agentlab`` takes, and that it loads no server, pyplot or widgets.

Measured in fresh interpreters (best of several runs), minus the time of an interpreter that imports nothing,
so the figure is agentlab's own (with openai, which it needs). A lesson's first cell waits this long.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

# What `import agentlab` must not load: the offline server, aiohttp's server, pyplot, widgets, the benchmark.
HEAVY = ("agentlab.offline", "aiohttp.web", "matplotlib.pyplot", "ipywidgets", "agentlab.bench")
PROBE = "import sys, agentlab; print(__import__('json').dumps(sorted(sys.modules)))"
TARGET_MS = 1500.0  # on an idle 2-core machine; a loaded one measures more (compare with calibration_ms)
OWN_TARGET_MS = 500.0


def best_seconds(code: str, repeat: int) -> float:
    """The best wall time of ``repeat`` fresh interpreters running ``code``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def loaded_heavy_modules() -> list[str]:
    """The HEAVY modules (or their submodules) that ``import agentlab`` loaded in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    modules: list[str] = json.loads(proc.stdout)
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def run(quick: bool) -> dict[str, Any]:
    repeat = 3 if quick else 7
    empty = best_seconds("pass", repeat)
    agentlab_ms = (best_seconds("import agentlab", repeat) - empty) * 1000
    openai_ms = (best_seconds("import openai, openai.types.responses", repeat) - empty) * 1000
    heavy = loaded_heavy_modules()
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
        "targets": [
            target("import agentlab, ms", agentlab_ms, TARGET_MS),
            target("import agentlab beyond import openai, ms", own, OWN_TARGET_MS),
            target("heavy modules loaded by import agentlab", float(len(heavy)), 0),
        ],
    }


def target(figure: str, value: float, most: float) -> dict[str, Any]:
    return {"figure": figure, "value": value, "target": f"<= {most:g}", "pass": value <= most}
