"""``python -m agentlab demo``: the whole idea of the package in one run, offline.

1. Five math conversations one after another: the batch takes the *sum* of their durations.
2. The same five at once: the batch takes about as long as the *longest* one.
3. The same five plus one that fails on purpose, settled: four answers are kept, one error is reported.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentlab.agent import Agent
from agentlab.charts import save_png, timeline
from agentlab.records import Batch, BatchReport, Fulfilled, RunResult
from agentlab.runners import run_concurrent, run_serial, run_settled
from agentlab.tools.math import MATH_TOOLS

DEMO_PROMPTS = [
    "What is 12 + 30?",
    "Add 3, 4 and 5, then multiply by 2",
    "(7 + 8) * (2 + 3)",
    "What is twenty-one times three?",
    "Sum 1.5 and 2.25",
]
FAILING_PROMPT = "What is 2 + 2? [fault=500]"


def run_demo(out: Path) -> int:
    return asyncio.run(demo(out))


async def demo(out: Path) -> int:
    agent = Agent(name="calculator", instructions="You are a careful math assistant. Use the tools.", tools=MATH_TOOLS)

    print("1. Serial: one conversation after another")
    serial = await run_serial(agent, DEMO_PROMPTS)
    print_answers(serial)

    print("\n2. Concurrent: all five at once with asyncio.gather")
    concurrent = await run_concurrent(agent, DEMO_PROMPTS)
    print_answers(concurrent)

    print("\n3. Settled: one more conversation that fails on purpose (the server answers 500)")
    settled = await run_settled(agent, [*DEMO_PROMPTS, FAILING_PROMPT])
    for index, outcome in enumerate(settled):
        if isinstance(outcome, Fulfilled):
            print(f"  [{index}] fulfilled  {outcome.value.output_text}")
        else:
            print(f"  [{index}] rejected   {type(outcome.reason).__name__}: {outcome.reason}")

    print()
    print_comparison(serial.report, concurrent.report)
    path = save_png(timeline(concurrent.report, title="run_concurrent: 5 conversations"), out)
    print(f"\ntimeline chart written to {path.resolve()}")
    return 0


def print_answers(results: Batch[RunResult]) -> None:
    for index, (result, timing) in enumerate(zip(results, results.report.conversations, strict=True)):
        print(f"  [{index}] {timing.duration:5.2f} s  {result.output_text}")


def print_comparison(serial: BatchReport, concurrent: BatchReport) -> None:
    print(f"  sum of durations (serial)       {serial.sum_of_durations:6.2f} s")
    print(f"  serial wall time                {serial.wall_time:6.2f} s")
    print(f"  longest conversation            {concurrent.longest_duration:6.2f} s")
    print(f"  concurrent wall time            {concurrent.wall_time:6.2f} s")
    print(f"  speedup (serial / concurrent)   {serial.wall_time / concurrent.wall_time:6.2f}x")
