"""``run_sync`` and the per-loop client: nothing stays alive per call, and one Ctrl-C stops a batch.

Each test runs in a fresh interpreter, so that its counts (loops, sessions, file descriptors, threads) are its
own and no other test's state is in them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PRELUDE = """
import asyncio, gc, json, os, threading, time, urllib.request, warnings, weakref
import aiohttp
import agentlab
from agentlab import Agent, run_settled, run_sync
from agentlab.tools.math import MATH_TOOLS

server = agentlab.offline_server()
agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)

def fds():
    return len(os.listdir("/proc/self/fd"))

def sessions():
    gc.collect()
    return sum(isinstance(o, aiohttp.ClientSession) for o in gc.get_objects())
"""


def run_child(code: str, timeout: float = 180) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["stderr"] = proc.stderr
    return report


def test_a_hundred_run_sync_calls_leave_no_loop_client_or_session_alive() -> None:
    report = run_child(
        """
        loops = []

        async def conversation():
            loops.append(weakref.ref(asyncio.get_running_loop()))
            return (await agent.run("What is 1 + 2?")).output_text

        async def notebook_cell():  # inside a running loop: run_sync uses a worker thread and a fresh loop
            return [run_sync(conversation()) for _ in range(50)]

        run_sync(conversation())  # warm-up: imports, the server's first connection
        before = fds()
        answers = [run_sync(conversation()) for _ in range(50)] + asyncio.run(notebook_cell())
        gc.collect()
        alive = sum(ref() is not None for ref in loops)
        print(json.dumps({"answers": len(set(answers)), "calls": len(loops), "alive": alive,
                          "sessions": sessions(), "fd_growth": fds() - before}))
        """
    )
    assert report["calls"] == 101 and report["answers"] == 1
    assert report["alive"] == 0, f"{report['alive']} of 101 loops are still alive (each holds a client)"
    assert report["sessions"] == 0, f"{report['sessions']} aiohttp sessions are still alive"
    assert report["fd_growth"] < 20, f"{report['fd_growth']} more file descriptors after 100 calls"


def test_loops_closed_without_shutdown_asyncgens_are_reclaimed_with_a_warning() -> None:
    report = run_child(
        """
        warnings.simplefilter("ignore", ResourceWarning)  # aiohttp's own, at collection
        prompts = [f"What is {i} + 2?" for i in range(10)]
        before = fds()
        growth = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            for _ in range(20):  # each batch on its own loop, closed by hand: its client is never closed
                loop = asyncio.new_event_loop()
                loop.run_until_complete(run_settled(agent, prompts))
                loop.close()
                growth.append(fds() - before)
        messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
        print(json.dumps({"growth": growth, "messages": messages}))
        """
    )
    growth, messages = report["growth"], report["messages"]
    assert isinstance(growth, list) and isinstance(messages, list)
    # 20 loops × 10 sockets each (and the server's ends) would be 400; only the last loop or two stay open
    assert max(growth) < 100, f"file descriptors grew by {growth}"
    assert messages and all("shutdown_asyncgens" in m and "asyncio.run" in m for m in messages), messages


CTRL_C = """
def in_flight():
    with urllib.request.urlopen(server.url + "/offline/stats", timeout=5) as response:
        return json.load(response)["in_flight"]

async def notebook_cell():
    try:
        run_sync(run_settled(agent, ["[duration=600] What is 1 + 2?"] * 50))  # 30 s at the tests' time scale
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    deadline = time.monotonic() + 10
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [t.name for t in threading.enumerate() if t.name == "agentlab-run-sync"]
    print(json.dumps({"in_flight": in_flight(), "workers": workers}), flush=True)

def announce_when_running():
    while in_flight() < 50:
        time.sleep(0.05)
    print("running", flush=True)

threading.Thread(target=announce_when_running, daemon=True).start()
"""


@pytest.mark.parametrize(
    "how",
    [
        "loop = asyncio.new_event_loop(); loop.run_until_complete(notebook_cell())",  # as ipykernel runs a cell
        "asyncio.run(notebook_cell())",  # asyncio.run's own SIGINT handler must not swallow the first Ctrl-C
    ],
    ids=["kernel-loop", "asyncio-run"],
)
def test_one_ctrl_c_cancels_a_run_sync_batch_inside_a_running_loop(how: str) -> None:
    code = PRELUDE + textwrap.dedent(CTRL_C) + how + "\n"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "running"
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)  # one Ctrl-C
        assert child.stdout.readline().strip() == "interrupted"
        waited = time.perf_counter() - sent
        report = json.loads(child.stdout.readline())
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()
    assert waited < 10, f"the batch (30 s long) went on for {waited:.1f} s after Ctrl-C"
    assert report == {"in_flight": 0, "workers": []}, report
