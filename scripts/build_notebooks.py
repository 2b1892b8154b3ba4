"""Build the stored outputs of the notebooks: run each lesson and solution top to bottom in a fresh kernel.

    python scripts/build_notebooks.py            # every lesson and solution
    python scripts/build_notebooks.py 01 04      # only the notebooks whose name starts with these

Outputs are made at full speed (AGENTLAB_TIME_SCALE=1) against the offline server, so the stored timings are
the real ones a learner sees. Exercises are stored with no outputs, ready for the learner. Never edit
outputs by hand: change the notebook's code and run this again.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def selected(paths: list[Path], prefixes: list[str]) -> list[Path]:
    return [p for p in paths if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
    )
    started = time.perf_counter()
    client.execute()
    nbformat.write(notebook, path)
    print(f"built {path.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s")


def clear(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(notebook, path)
    print(f"cleared {path.relative_to(ROOT)}")


def main(prefixes: list[str]) -> int:
    os.environ["AGENTLAB_TIME_SCALE"] = os.environ.get("AGENTLAB_BUILD_TIME_SCALE", "1")
    os.environ["AGENTLAB_BACKEND"] = "offline"
    os.environ.pop("OPENAI_API_KEY", None)  # outputs are always made offline, and never hold a key
    for path in selected(sorted((NOTEBOOKS / "exercises").glob("*.ipynb")), prefixes):
        clear(path)
    runnable = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
    for path in selected(runnable, prefixes):
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
