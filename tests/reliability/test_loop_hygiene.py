"""20 asyncio.run batches and 20 run_sync calls inside a running loop: no loop errors, no lost exceptions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = """
import asyncio, logging, warnings
logging.basicConfig(level=logging.WARNING)
warnings.simplefilter("always")
from agentlab import Agent, run_concurrent, run_settled, run_sync
from agentlab.tools.math import MATH_TOOLS

agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
for i in range(20):
    batch = asyncio.run(run_settled(agent, [f"What is {i} + 1?", "What is 1 + 1? [fault=429x1]"]))
    assert [o.status for o in batch] == ["fulfilled", "fulfilled"], batch

async def inside_a_running_loop():
    for i in range(20):
        assert run_sync(run_concurrent(agent, [f"What is {i} * 2?"]))[0].output_text == f"{i} * 2 = {2 * i}."

asyncio.run(inside_a_running_loop())
print("ok")
"""


def test_many_loops_leave_no_errors_behind() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["PYTHONWARNINGS"] = "always"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], capture_output=True, text=True,
                          timeout=240, env=env)  # fmt: skip
    closed = proc.stderr.count("Event loop is closed")
    lost = proc.stderr.count("Task exception was never retrieved")
    print(f"\n20 asyncio.run + 20 run_sync: {closed} 'Event loop is closed', {lost} lost task exceptions, "
          f"{len(proc.stderr.splitlines())} stderr lines")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert closed == 0 and lost == 0
    assert proc.stderr.strip() == "", proc.stderr
