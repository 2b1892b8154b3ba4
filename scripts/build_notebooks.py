"""Build the stored outputs of the notebooks: run each lesson and solution top to bottom in a fresh kernel.

    python scripts/build_notebooks.py            # every lesson, appendix and solution
    python scripts/build_notebooks.py 01 04      # only the notebooks whose name starts with these

Outputs are made at full speed (AGENTLAB_TIME_SCALE=1) against the offline server, so the stored timings are
the real ones a learner sees. Exercises are stored with no outputs, ready for the learner (their cell metadata,
such as nbgrader's, is kept). Never edit outputs by hand: change the notebook's code and run this again.

Widgets (the progress bar, the conversation board) are stored as widget state (JupyterLab and nbviewer redraw
the live widget from it) and, in the same output, as pictures of their final state: static HTML, which is what
GitHub shows, and plain text, which nbval and a terminal read.
"""

from __future__ import annotations

import html
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def selected(paths: list[Path], prefixes: list[str]) -> list[Path]:
    return [p for p in paths if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    started = time.perf_counter()
    client.execute()
    add_widget_pictures(notebook)
    nbformat.write(notebook, path)
    print(f"built {path.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s")


def add_widget_pictures(notebook: Any) -> None:
    """Give every widget output a ``text/html`` and a ``text/plain`` picture of the widget's final state, read from
    its stored state (the text the widget library stored is its first state: a progress bar at 0%)."""
    models = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in models:
                output["data"]["text/html"] = picture(models, view["model_id"])
                output["data"]["text/plain"] = text_picture(models, view["model_id"])


def picture(models: dict[str, Any], model_id: str) -> str:
    """HTML for one widget model: boxes hold children, HTML widgets show their value, progress bars a <progress>."""
    model = models.get(model_id, {})
    state = model.get("state", {})
    name = model.get("model_name", "")
    if name in ("HBoxModel", "VBoxModel"):
        children = "".join(picture(models, child.removeprefix("IPY_MODEL_")) for child in state.get("children", []))
        direction = "row" if name == "HBoxModel" else "column"
        return f"<div style='display:flex;flex-direction:{direction};gap:6px;align-items:center'>{children}</div>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        return f"<progress value='{state.get('value', 0)}' max='{state.get('max', 100)}'></progress>"
    if name in ("HTMLModel", "LabelModel"):
        value = str(state.get("value", ""))
        return value if name == "HTMLModel" else html.escape(value)
    return ""


def text_picture(models: dict[str, Any], model_id: str) -> str:
    """The same picture as text: boxes side by side or one under another, a progress bar as ``[#####     ]``."""
    model = models.get(model_id, {})
    state = model.get("state", {})
    name = model.get("model_name", "")
    if name in ("HBoxModel", "VBoxModel"):
        children = [text_picture(models, child.removeprefix("IPY_MODEL_")) for child in state.get("children", [])]
        return (" " if name == "HBoxModel" else "\n").join(child for child in children if child)
    if name in ("FloatProgressModel", "IntProgressModel"):
        top = float(state.get("max", 100)) or 1.0
        filled = round(10 * min(1.0, max(0.0, float(state.get("value", 0)) / top)))
        return "[" + "#" * filled + " " * (10 - filled) + "]"
    if name in ("HTMLModel", "LabelModel"):
        value = str(state.get("value", ""))
        text = html.unescape(re.sub(r"<[^>]+>", " ", value)) if name == "HTMLModel" else value
        return " ".join(text.replace("\u2007", " ").split())
    return ""


def clear(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
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
