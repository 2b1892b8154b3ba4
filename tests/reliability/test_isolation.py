"""100 concurrent runs on one Agent: each transcript holds only its own prompt and tool calls.

The Agent is unchanged afterwards."""

from __future__ import annotations

import asyncio
import copy
import json

from agentlab import Agent, RunResult
from agentlab.tools.math import MATH_TOOLS


def test_one_agent_many_concurrent_runs() -> None:
    agent = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS)
    before = copy.deepcopy(agent)
    prompts = [f"What is {i} + {i * 3}?" for i in range(100)]

    async def main() -> list[RunResult]:
        return await asyncio.gather(*(agent.run(p) for p in prompts))

    results = asyncio.run(main())
    leaks = 0
    for i, result in enumerate(results):
        users = [m["content"] for m in result.messages if m.get("role") == "user"]
        calls = [json.loads(m["arguments"]) for m in result.messages if m.get("type") == "function_call"]
        leaks += (
            users != [prompts[i]]
            or calls != [{"a": i, "b": i * 3}]
            or result.output_text != f"{i} + {i * 3} = {4 * i}."
        )
    print(f"\n100 concurrent runs on one Agent: {leaks} transcripts with foreign content")
    assert leaks == 0
    assert agent == before
    assert agent.tool_schemas == before.tool_schemas
