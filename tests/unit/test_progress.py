"""Progress displays: the ConversationBoard's state, its HTML, throttling, and quiet degradation."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import pytest

from agentlab.errors import ConfigurationError
from agentlab.progress import ConversationBoard, TqdmProgress, make_progress
from agentlab.records import AgentEvent, Fulfilled, Rejected, RunResult, Usage


def result(turns: int) -> RunResult:
    now = time.perf_counter()
    return RunResult("ok", [], (), Usage(), turns, now, now)


def event(kind: str, name: str = "sum_numbers", detail: str = "") -> AgentEvent:
    return AgentEvent(kind, name, detail, time.perf_counter())  # type: ignore[arg-type]


def test_board_follows_a_batch_without_a_display(capsys: pytest.CaptureFixture[str]) -> None:
    board = ConversationBoard(["What is 1 + 1?", "<script>alert(1)</script>", "x"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        board.start_batch(3, "run_settled")
        assert board.counts() == {"queued": 3}
        board.conversation_started(0)
        board.conversation_started(1)
        board.conversation_event(0, event("model_end", detail="1 tool call"))
        board.conversation_event(0, event("tool_start", detail="a=1, b=1"))
        board.conversation_event(0, event("tool_end", detail="2"))
        board.conversation_finished(0, Fulfilled(result(2)))
        board.conversation_finished(1, Rejected(ValueError("boom")))
        board.end_batch()
    assert board.counts() == {"done": 1, "failed": 1, "queued": 1}
    row0, row1, row2 = board.rows
    assert (row0.status, row0.turns, row0.last_event) == ("done", 2, "← 2")
    assert (row1.status, row1.error) == ("failed", "ValueError")
    assert row2.status == "queued"
    page = board._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "done ✓" in page and "failed ✗" in page
    assert capsys.readouterr() == ("", "")
    assert caught == []


def test_board_throttles_rendering() -> None:
    board = ConversationBoard()
    board.start_batch(1, "run_concurrent")
    board.conversation_started(0)
    for _ in range(1000):
        board.conversation_event(0, event("tool_end", detail="1"))
    board.end_batch()
    assert board.renders < 20


def test_tqdm_progress_in_a_plain_process(capsys: pytest.CaptureFixture[str]) -> None:
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
    assert make_progress(False) is None
    assert isinstance(make_progress(True), TqdmProgress)
    assert make_progress(board) is board
    assert isinstance(make_progress("bar"), TqdmProgress)  # a view by name, imported when asked for
    with pytest.raises(ConfigurationError, match=r"progress='bars' is not a known view: .*'bar'"):
        make_progress("bars")


def test_runners_import_no_display() -> None:
    """The runner layer knows displays by name only: agentlab.progress loads when progress=True asks."""
    code = (
        "import sys, asyncio, agentlab\n"
        "assert 'agentlab.progress' not in sys.modules, 'import agentlab loaded the progress display'\n"
        "from agentlab.tools.math import MATH_TOOLS\n"
        "agent = agentlab.Agent(name='c', instructions='', tools=MATH_TOOLS)\n"
        "asyncio.run(agentlab.run_settled(agent, ['What is 1 + 2?']))\n"
        "assert 'agentlab.progress' not in sys.modules, 'a batch without progress loaded it'\n"
        "asyncio.run(agentlab.run_settled(agent, ['What is 1 + 2?'], progress=True))\n"
        "assert 'agentlab.progress' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
