"""Lanes (agentlab/lanes.py): one lane per conversation, driven by the real runners against the offline server,
drawn as text outside Jupyter and as a live widget (then its final HTML) inside a real kernel."""

from __future__ import annotations

import asyncio
import io
import time

import nbformat
import pytest
from nbclient import NotebookClient

from agentlab import Agent, run_concurrent, run_settled
from agentlab.lanes import Lanes
from agentlab.records import AgentEvent, Fulfilled, Rejected, RunResult, Usage
from agentlab.tools.math import MATH_TOOLS

PROMPTS = ["What is 3 + 4?", "Hello there", "What is 2 * 5? [fault=500]"]


def event(kind: str, name: str, detail: str) -> AgentEvent:
    return AgentEvent(kind, name, detail, time.perf_counter())  # type: ignore[arg-type]


def test_runners_drive_the_lanes_and_the_text_fallback_prints_them() -> None:
    out = io.StringIO()
    lanes = Lanes(PROMPTS, file=out)
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True)
    outcomes = asyncio.run(run_settled(agent, PROMPTS, progress=lanes))
    assert [o.status for o in outcomes] == ["fulfilled", "fulfilled", "rejected"]
    first, second, failed = lanes.lanes
    assert first.status == "done" and ("call", "→ sum_numbers(a=3, b=4)") in first.pieces
    assert ("result", "← 7") in first.pieces
    assert first.text == outcomes[0].value.output_text  # type: ignore[union-attr]  # streamed, word by word
    assert second.text.strip() and second.turns == 1
    assert failed.status == "failed" and failed.error is not None and "BackendError" in failed.error
    printed = out.getvalue()
    assert printed.count("[lane ") == 3  # one line as each conversation ends
    assert "Lanes: run_settled: 0 queued · 0 running · 2 done · 1 failed" in printed  # then every lane in full
    assert "→ sum_numbers(a=3, b=4)" in printed


def test_a_lane_without_streaming_shows_the_answer_when_it_comes() -> None:
    lanes = Lanes(file=io.StringIO())
    lanes.start_batch(1, "run_concurrent")
    lanes.conversation_started(0)
    lanes.conversation_event(0, event("model_end", "gpt-5-mini", "answer"))
    now = time.perf_counter()
    lanes.conversation_finished(0, Fulfilled(RunResult("It is 7.", [], (), Usage(), 1, now, now)))
    assert lanes.lanes[0].text == "It is 7." and lanes.lanes[0].status == "done"


def test_text_deltas_join_into_one_piece_and_html_is_escaped() -> None:
    lanes = Lanes(["<script>alert(1)</script>"], file=io.StringIO())
    lanes.start_batch(1, "run_concurrent")
    lanes.conversation_started(0)
    for word in ("The ", "answer ", "<b>is</b> ", "7."):
        lanes.conversation_event(0, event("text_delta", "gpt-5-mini", word))
    lanes.conversation_finished(0, Rejected(ValueError("a < b")))
    lane = lanes.lanes[0]
    assert lane.pieces == [("text", "The answer <b>is</b> 7.")]
    page = lanes._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page and "&lt;b&gt;is&lt;/b&gt;" in page
    assert "ValueError: a &lt; b" in page and page.count("class='agentlab-lane'") == 1


def test_lanes_outside_jupyter_draw_no_widget_and_throttle_nothing_heavy() -> None:
    lanes = Lanes(file=io.StringIO())
    lanes.start_batch(2, "run_concurrent")
    lanes.conversation_started(0)
    for _ in range(2000):
        lanes.conversation_event(0, event("text_delta", "m", "x"))
    assert lanes.renders == 0 and len(lanes.lanes[0].text) == 2000


NOTEBOOK_CELL = """
from agentlab import Agent, run_concurrent
from agentlab.lanes import Lanes
from agentlab.tools.math import MATH_TOOLS
agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True)
lanes = Lanes(refresh=0.0)
results = await run_concurrent(agent, ["What is 3 + 4?", "What is 6 * 7?"], progress=lanes)
print(lanes.renders)
"""


@pytest.mark.timeout(120)
def test_in_a_kernel_a_live_widget_leaves_its_final_html_in_the_notebook() -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CELL)])
    NotebookClient(notebook, timeout=90, kernel_name="python3", store_widget_state=False).execute()
    outputs = notebook.cells[0].outputs
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1  # one view, updated in place
    data = shown[0].data
    assert "application/vnd.jupyter.widget-view+json" not in data  # the live widget was replaced...
    assert "text/html" in data and "2 done" in data["text/html"]  # ...by its final picture
    assert "→ sum_numbers(a=3, b=4)" in data["text/html"] and "42" in data["text/html"]
    renders = int("".join(o.text for o in outputs if o.output_type == "stream").split()[-1])
    assert renders > 3  # it was redrawn live while the text streamed


def test_progress_lanes_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True)
    results = asyncio.run(run_concurrent(agent, ["What is 6 * 7?", "What is 1 + 1?"], progress="lanes"))
    printed = capsys.readouterr().out
    assert "Lanes: run_concurrent: 0 queued · 0 running · 2 done · 0 failed" in printed
    assert "→ multiply_numbers(a=6, b=7)" in printed and results[0].output_text.replace("\n", " ")[:40] in printed
