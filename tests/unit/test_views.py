"""The live views (agentlab/views/live.py): the bar, the table and the lanes, driven by hand and by the real runners
(in process), drawn as text outside Jupyter. In a kernel, and loaded on demand: tests/integration/test_views.py."""

from __future__ import annotations

import io
import time
import warnings

import pytest

from agentlab import Agent, run_concurrent, run_settled
from agentlab.errors import ConfigurationError
from agentlab.records import AgentEvent, Fulfilled, Rejected, RunResult, Usage
from agentlab.tools.math import MATH_TOOLS
from agentlab.views import ConversationBoard, Lanes, TqdmProgress, make_progress

PROMPTS = ["What is 3 + 4?", "Hello there", "What is 2 * 5? [fault=500]"]


def result(turns: int, text: str = "ok") -> RunResult:
    now = time.perf_counter()
    return RunResult(text, [], (), Usage(), turns, now, now)


def event(kind: str, name: str = "sum_numbers", detail: str = "") -> AgentEvent:
    return AgentEvent(kind, name, detail, time.perf_counter())  # type: ignore[arg-type]


def test_the_board_follows_a_batch_and_prints_it_outside_jupyter() -> None:
    out = io.StringIO()
    board = ConversationBoard(["What is 1 + 1?", "<script>alert(1)</script>", "x"], file=out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        board.start_batch(3, "run_settled")
        assert board.counts() == {"queued": 3, "running": 0, "done": 0, "failed": 0}
        board.conversation_started(0)
        board.conversation_started(1)
        board.conversation_event(0, event("model_end", detail="1 tool call"))
        board.conversation_event(0, event("tool_start", detail="a=1, b=1"))
        board.conversation_event(0, event("tool_end", detail="2"))
        board.conversation_finished(0, Fulfilled(result(2)))
        board.conversation_finished(1, Rejected(ValueError("boom")))
        board.end_batch()
    assert caught == []
    assert board.counts() == {"queued": 1, "running": 0, "done": 1, "failed": 1}
    row0, row1, row2 = board.rows
    assert (row0.status, row0.turns, row0.last_event) == ("done", 2, "← 2")
    assert (row1.status, row1.error, row2.status) == ("failed", "ValueError: boom", "queued")
    page = board._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "done ✓" in page and "failed ✗" in page
    printed = out.getvalue()
    assert printed.count("[conv ") == 2  # a line as each conversation ends, then the table
    assert "run_settled: 1 queued · 0 running · 1 done · 1 failed" in printed and "ValueError: boom" in printed


def test_views_throttle_rendering_and_draw_nothing_without_a_front_end() -> None:
    board, lanes = ConversationBoard(refresh=10.0, file=io.StringIO()), Lanes(file=io.StringIO())
    for view in (board, lanes):
        view.start_batch(1, "run_concurrent")
        view.conversation_started(0)
        for _ in range(2000):
            view.conversation_event(0, event("text_delta", "m", "x"))
        assert view.renders == 0 and len(view.rows[0].text) == 2000  # no widget: nothing drawn, all kept


def test_a_round_update_shows_in_the_views() -> None:
    bar, lanes = TqdmProgress(), Lanes(file=io.StringIO())
    for view in (bar, lanes):
        view.start_batch(2, "run_batched")
        view.round_update(2, "batch_7", "in_progress", 1, 2)
    assert "round 2 (batch_7): in_progress, 1/2 requests" in str(lanes)
    assert "round 2: in_progress, 1/2 requests" in str(bar.bar)
    bar.end_batch()


def test_the_bar_in_a_plain_process(capsys: pytest.CaptureFixture[str]) -> None:
    bar = TqdmProgress()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bar.start_batch(2, "run_concurrent")
        bar.conversation_finished(0, Fulfilled(result(1)))
        bar.conversation_finished(1, Rejected(RuntimeError("x")))
        bar.end_batch()
        bar.end_batch()
    assert caught == []
    err = capsys.readouterr().err
    assert "run_concurrent" in err and "2/2" in err and "failed=1" in err


def test_make_progress() -> None:
    board = ConversationBoard()
    assert make_progress(False) is None and make_progress(None) is None
    assert isinstance(make_progress(True), TqdmProgress) and isinstance(make_progress("bar"), TqdmProgress)
    assert isinstance(make_progress("table"), ConversationBoard) and isinstance(make_progress("lanes"), Lanes)
    assert make_progress(board) is board
    with pytest.raises(ConfigurationError, match=r"progress='bars' is not a known view: .*'bar'"):
        make_progress("bars")


async def test_runners_drive_the_lanes_and_the_text_fallback_prints_them() -> None:
    out = io.StringIO()
    lanes = Lanes(PROMPTS, file=out)
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True)
    outcomes = await run_settled(agent, PROMPTS, progress=lanes)
    assert [o.status for o in outcomes] == ["fulfilled", "fulfilled", "rejected"]
    first, second, failed = lanes.rows
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
    lanes.conversation_finished(0, Fulfilled(result(1, "It is 7.")))
    assert lanes.rows[0].text == "It is 7." and lanes.rows[0].status == "done"


def test_text_deltas_join_into_one_piece_and_html_is_escaped() -> None:
    lanes = Lanes(["<script>alert(1)</script>"], file=io.StringIO())
    lanes.start_batch(1, "run_concurrent")
    lanes.conversation_started(0)
    for word in ("The ", "answer ", "<b>is</b> ", "7."):
        lanes.conversation_event(0, event("text_delta", "gpt-5-mini", word))
    lanes.conversation_finished(0, Rejected(ValueError("a < b")))
    lane = lanes.rows[0]
    assert lane.pieces == [("text", "The answer <b>is</b> 7.")]
    page = lanes._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page and "&lt;b&gt;is&lt;/b&gt;" in page
    assert "ValueError: a &lt; b" in page and page.count("class='agentlab-lane'") == 1


async def test_progress_lanes_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True)
    results = await run_concurrent(agent, ["What is 6 * 7?", "What is 1 + 1?"], progress="lanes")
    printed = capsys.readouterr().out
    assert "Lanes: run_concurrent: 0 queued · 0 running · 2 done · 0 failed" in printed
    assert "→ multiply_numbers(a=6, b=7)" in printed and results[0].output_text.replace("\n", " ")[:40] in printed
