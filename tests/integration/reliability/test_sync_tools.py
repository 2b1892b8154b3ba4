"""Sync tools run in agentlab's own bounded pool of daemon threads (agentlab/tools/threads.py), not in
``asyncio.to_thread``'s: a tool that never returns cannot be stopped (no thread can be), but it must not starve
the other tools, and it must not keep ``asyncio.run`` or the interpreter from ending. The last test shows that
``asyncio.to_thread`` would do both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from agentlab.errors import ConfigurationError
from agentlab.settings import tool_threads
from agentlab.tools.threads import ToolThreads


def test_at_most_size_calls_run_at_once() -> None:
    pool = ToolThreads(size=2)
    release = threading.Event()
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            running.append(i)
            most[0] = max(most[0], len(running))
        release.wait(5)
        with lock:
            running.remove(i)
        return i

    jobs = [pool.submit(work, {"i": i}) for i in range(6)]
    time.sleep(0.2)
    assert len(running) == 2 and pool.workers == 2, "more calls ran than the pool's size"
    release.set()
    assert [job.future.result(timeout=5) for job in jobs] == list(range(6))
    assert most[0] == 2


def test_an_abandoned_call_gives_its_place_to_a_new_thread() -> None:
    pool = ToolThreads(size=1)
    stuck, release = threading.Event(), threading.Event()

    def hang() -> str:
        stuck.set()
        release.wait(10)
        return "late"

    hung = pool.submit(hang, {})
    assert stuck.wait(5)
    queued = pool.submit(lambda: "next", {})
    time.sleep(0.1)
    assert not queued.future.done(), "with size=1 the second call waits for the first"
    pool.abandon(hung)  # its caller gave up: the thread is written off, a new one starts
    assert queued.future.result(timeout=5) == "next"
    assert pool.stuck == 1
    release.set()
    assert hung.future.result(timeout=5) == "late"  # it did finish; nobody waits for it any more
    deadline = time.monotonic() + 5
    while pool.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.stuck == 0 and pool.workers == 1


def test_a_call_abandoned_before_it_starts_never_runs() -> None:
    pool = ToolThreads(size=1)
    release = threading.Event()
    ran: list[str] = []
    first = pool.submit(release.wait, {"timeout": 5})
    second = pool.submit(lambda: ran.append("second"), {})
    pool.abandon(second)
    release.set()
    first.future.result(timeout=5)
    time.sleep(0.1)
    assert ran == [] and second.future.cancelled()


HUNG_AND_NORMAL = textwrap.dedent(
    """
    import asyncio, json, threading, time
    import agentlab
    from agentlab import Agent, run_bounded, tool

    forever = threading.Event()

    @tool(name="sum_numbers", description="Add two numbers.")
    def adder(a: float, b: float) -> float:
        if a == 13:
            forever.wait()  # never returns, and no thread can be stopped
        return a + b

    agentlab.offline_server()  # started before the clock runs
    agent = Agent(name="h", instructions="", tools=(adder,))
    prompts = [f"What is 13 + {i}?" for i in range(HUNG)] + [f"What is {100 + i} + 1?" for i in range(30)]
    started = time.perf_counter()
    outcomes = asyncio.run(run_bounded(agent, prompts, max_concurrency=len(prompts), timeout=TIMEOUT))
    print(json.dumps({"statuses": [o.status for o in outcomes], "errors": [type(o.reason).__name__
          for o in outcomes if o.status == "rejected"], "seconds": time.perf_counter() - started}), flush=True)
    """
)


def test_hung_sync_tools_neither_starve_the_others_nor_block_exit() -> None:
    """10 hung tools (more than the default pool's 6 threads here) and 30 normal conversations."""
    hung, timeout = 10, 10.0  # generous: a loaded machine must not time out a normal conversation
    code = HUNG_AND_NORMAL.replace("HUNG", str(hung)).replace("TIMEOUT", str(timeout))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["statuses"] == ["rejected"] * hung + ["fulfilled"] * 30, report
    assert report["errors"] == ["ConversationTimeout"] * hung
    # the process ends as soon as the batch does: the stuck threads are daemons (before: it never exited)
    assert elapsed - report["seconds"] < 30, f"exit took {elapsed - report['seconds']:.1f} s after the batch"


def test_the_pool_size_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_TOOL_THREADS", "8")
    assert tool_threads() == 8
    monkeypatch.setenv("AGENTLAB_TOOL_THREADS", "lots")
    with pytest.raises(ConfigurationError, match="AGENTLAB_TOOL_THREADS='lots' is not a whole number"):
        tool_threads()
    with pytest.raises(ConfigurationError, match="set AGENTLAB_TOOL_THREADS >= 1"):
        ToolThreads(size=0)


ABANDON_ONE = """
import asyncio, threading
from agentlab import tool

forever = threading.Event()


@tool
def hangs(a: float) -> float:
    \"\"\"Never return.\"\"\"
    forever.wait()
    return a


async def main():
    try:
        await asyncio.wait_for(CALL, 0.2)
    except TimeoutError:
        print("timed out", flush=True)

asyncio.run(main())
"""


def test_why_not_asyncio_to_thread_a_hung_sync_tool_would_keep_asyncio_run_from_returning() -> None:
    """The same abandoned call: in agentlab's pool the script ends; in ``asyncio.to_thread`` it never does."""
    ours = ABANDON_ONE.replace("CALL", "hangs.call('{\"a\": 1}')")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", ours], capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - started
    assert proc.returncode == 0 and proc.stdout == "timed out\n", proc.stderr[-2000:]

    theirs = ABANDON_ONE.replace("CALL", "asyncio.to_thread(forever.wait)")
    with pytest.raises(subprocess.TimeoutExpired) as hung:
        subprocess.run([sys.executable, "-c", theirs], capture_output=True, text=True, timeout=max(5.0, 3 * took))
    assert hung.value.stdout in (b"timed out\n", "timed out\n"), "the to_thread script never got to its timeout"
