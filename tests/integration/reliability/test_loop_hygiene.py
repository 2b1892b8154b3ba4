"""Many event loops, one after another, leave nothing behind.

20 consecutive ``asyncio.run`` batches (each with a retried 429, a conversation cut by a timeout, a failing
``run_concurrent`` that cancels the others, and an ``as_completed`` stream left early) and 20 ``run_sync`` calls
from inside a running loop: 0 "Event loop is closed", 0 "Task exception was never retrieved", no warning and no
log record at WARNING or above.

It runs twice: in this process (warnings, logs and unraisable exceptions captured), and in a subprocess in
Python's development mode, whose whole stderr is read, so that messages at exit and from the garbage collector
are caught too.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import pytest

from agentlab.offline import LatencyModel, ServerConfig, start

# The work, shared by both tests. It uses the process's default client (one per loop, closed when the loop
# shuts down) and the process's offline server, as a learner's script does.
WORK = """
import asyncio, contextlib
from agentlab import Agent, MaxTurnsExceeded, as_completed, run_bounded, run_concurrent, run_settled, run_sync
from agentlab.tools.math import MATH_TOOLS

agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
looping = Agent(name="calc", instructions="", tools=MATH_TOOLS, max_turns=2)


async def one_batch(i):
    settled = await run_settled(agent, [f"What is {i} + 1?", "What is 1 + 1? [fault=429x1]"])
    assert [o.status for o in settled] == ["fulfilled", "fulfilled"], settled
    bounded = await run_bounded(agent, [f"What is {i} * 2?", "What is 1 + 1? [fault=hang]"],
                                max_concurrency=2, timeout=0.3)
    assert [o.status for o in bounded] == ["fulfilled", "rejected"], bounded
    try:
        await run_concurrent(looping, ["What is 1 + 1? [loop]", "What is 2 + 2? [duration=60]"])
    except MaxTurnsExceeded:
        pass
    else:
        raise AssertionError("run_concurrent did not raise")
    async with contextlib.aclosing(as_completed(agent, ["What is 3 + 3?", "What is 4 + 4? [duration=60]"])) as s:
        async for index, outcome in s:
            assert index == 0 and outcome.status == "fulfilled"
            break
    return i


def many_loops(n):
    done = [asyncio.run(one_batch(i)) for i in range(n)]
    assert done == list(range(n))

    async def inside_a_running_loop():
        for i in range(n):
            batch = run_sync(run_concurrent(agent, [f"What is {i} * 2?"]))
            assert batch[0].output_text == f"{i} * 2 = {2 * i}.", batch[0].output_text
        return n

    assert asyncio.run(inside_a_running_loop()) == n
"""

SUBPROCESS = (
    WORK
    + """
import gc, logging, sys, warnings

class Slow(logging.Filter):  # development mode logs slow callbacks; on a shared machine that is noise
    def filter(self, record):
        return not record.getMessage().startswith("Executing <")

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
logging.getLogger("asyncio").addFilter(Slow())
warnings.simplefilter("always")
many_loops(20)
gc.collect()
print("ok")
"""
)

TIME_SCALE = 0.01
MESSAGES = (
    "Event loop is closed",
    "Task exception was never retrieved",
    "Task was destroyed but it is pending",
    "Unclosed client session",
    "Unclosed connector",
    "ResourceWarning",
    "Exception ignored",
)


def test_many_loops_in_a_subprocess_print_nothing_to_stderr() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONASYNCIODEBUG", "PYTHONWARNINGS")}
    env["AGENTLAB_TIME_SCALE"] = str(TIME_SCALE)
    env.pop("AGENTLAB_OFFLINE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SUBPROCESS], capture_output=True, text=True, timeout=120, env=env
    )
    counts = {message: proc.stderr.count(message) for message in MESSAGES}
    lines = len(proc.stderr.splitlines())
    print(f"\nsubprocess (-X dev), 20 asyncio.run + 20 run_sync: {counts}; {lines} stderr lines")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert not any(counts.values()), proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def test_many_loops_in_this_process_leave_no_warnings_or_logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(WORK), "loop_hygiene_work", "exec"), namespace)  # our own test code
    with (
        start(ServerConfig(LatencyModel(time_scale=TIME_SCALE))) as server,
        warnings.catch_warnings(record=True) as caught,
        caplog.at_level(logging.WARNING),
    ):
        # each new loop's default client is made by make_client(), which reads this: our own fast server
        monkeypatch.setenv("AGENTLAB_OFFLINE_URL", server.base_url)
        warnings.simplefilter("always")
        namespace["many_loops"](20)
        gc.collect()
    records = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    texts = records + [str(w.message) for w in caught] + [repr(u.exc_value) for u in unraisable]
    counts = {message: sum(message in text for text in texts) for message in MESSAGES}
    print(
        f"\nin process, 20 asyncio.run + 20 run_sync: {counts}; {len(records)} log records, "
        f"{len(caught)} warnings, {len(unraisable)} unraisable exceptions"
    )
    assert not any(counts.values()), texts
    assert texts == []
