"""``import agentlab`` in a fresh interpreter loads none of the heavy parts: they load where they are used."""

from __future__ import annotations

import json
import subprocess
import sys

# What `import agentlab` must not load (nor any submodule of these).
HEAVY = (
    "agentlab.offline",
    "aiohttp.web",
    "matplotlib.pyplot",
    "ipywidgets",
    "agentlab.bench",
    "opentelemetry",
    "dask",
    "distributed",
)


def test_import_agentlab_loads_no_server_pyplot_widgets_or_bench() -> None:
    code = "import sys, json, agentlab; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(proc.stdout)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"import agentlab loaded {heavy}: import them where they are used, not at module level"
