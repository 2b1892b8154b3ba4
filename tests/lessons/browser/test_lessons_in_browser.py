"""Each lesson, opened in JupyterLab in Chromium and run from top to bottom: no error or stderr output,
charts rendered as images, and the progress widgets drawn where a lesson uses them. A full-page screenshot of
each lesson goes to artifacts/screenshots/ (and to docs/screenshots/ with AGENTLAB_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"

COUNT_CELLS = """() => {
  const prompts = [...document.querySelectorAll('[data-under-test] .jp-CodeCell .jp-InputPrompt')];
  return {cells: prompts.length, done: prompts.filter(p => /\\[\\d+\\]/.test(p.textContent)).length,
          busy: prompts.filter(p => p.textContent.includes('*')).length};
}"""


def source_of(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


KERNEL_READY = """() => {
  const panel = window.jupyterapp?.shell?.currentWidget;
  const kernel = panel?.sessionContext?.session?.kernel;
  const ready = !!(panel?.context?.isReady && panel.content?.widgets?.length && kernel && kernel.status === 'idle');
  if (ready) panel.node.setAttribute('data-under-test', '1');  // JupyterLab may restore other tabs: look at ours
  return ready;
}"""
SCOPE = "[data-under-test] "


def run_all_cells(page: Any, name: str) -> None:
    """Wait for the notebook and its kernel, run every cell, and wait until each has an execution count."""
    page.wait_for_function(KERNEL_READY, timeout=90_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }")
    deadline = time.monotonic() + 120
    state: dict[str, int] = {}
    while time.monotonic() < deadline:
        state = page.evaluate(COUNT_CELLS)
        if state["cells"] and state["done"] == state["cells"] and not state["busy"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{name}: cells still running after 120 s: {state}")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_and_renders_in_jupyterlab(lab: str, lab_browser: Any, lesson: Path) -> None:
    page = lab_browser.new_page(viewport={"width": 1280, "height": 1800})
    try:
        page.goto(f"{lab}/lab/tree/{lesson.name}?reset", wait_until="domcontentloaded", timeout=60_000)
        run_all_cells(page, lesson.name)
        page.wait_for_timeout(1500)  # let widgets and images finish drawing
        errors = page.locator(SCOPE + '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        assert errors.count() == 0, errors.first.inner_text()
        source = source_of(lesson)
        images = page.evaluate(
            "() => [...document.querySelectorAll('[data-under-test] .jp-RenderedImage img')]"
            ".filter(i => i.naturalWidth > 0).length"
        )
        if any(chart in source for chart in ("timeline(", "sum_vs_longest(", "scaling(", "bars(")):
            assert images >= 1, "a matplotlib chart should render as an <img>"
        if "progress=True" in source:
            bars = page.locator(f"{SCOPE}.widget-progress, {SCOPE}.widget-hprogress")
            assert bars.count() >= 1, page.locator(SCOPE + ".jp-OutputArea-output").all_inner_texts()[-6:]
        if "ConversationBoard" in source:
            board = page.locator(SCOPE + ".agentlab-board")
            assert board.count() >= 1 and "done ✓" in board.first.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{lesson.stem}.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("AGENTLAB_UPDATE_SCREENSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, DOCS / shot.name)
        print(f"\n{lesson.stem}: {images} chart images, screenshot {shot.relative_to(ROOT)}")
    finally:
        page.close()
