"""100 concurrent runs on one Agent: each transcript holds only its own prompt and its own tool calls, each
event goes to its own conversation, and the Agent is unchanged afterwards (equal to a deep copy taken before).

Each prompt has its own numbers, ``(i + 1000) * (i + 2000)``, so a call or an output that strayed into another
conversation would show up in its arguments.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from typing import Any

import pytest

from agentlab import Agent, RunResult, run_concurrent
from agentlab.offline import LatencyModel, OfflineServer, ServerConfig
from agentlab.records import AgentEvent
from agentlab.tools.math import MATH_TOOLS

from .conftest import client_for

N = 100


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.02, jitter=0.9, seed=5))  # jitter: runs interleave


def prompt(i: int) -> str:
    return f"What is ({i} + 1000) * ({i} + 2000)?"


def expected_calls(i: int) -> list[tuple[str, dict[str, int]]]:
    return [
        ("sum_numbers", {"a": i, "b": 1000}),
        ("sum_numbers", {"a": i, "b": 2000}),
        ("multiply_numbers", {"a": i + 1000, "b": i + 2000}),
    ]


def foreign_content(i: int, result: RunResult, events: list[AgentEvent]) -> list[str]:
    """What in conversation ``i`` does not belong to it (empty when it is clean)."""
    problems = []
    users = [m["content"] for m in result.messages if m.get("role") == "user"]
    if users != [prompt(i)]:
        problems.append(f"user messages {users}")
    calls = [(m["name"], json.loads(m["arguments"])) for m in result.messages if m.get("type") == "function_call"]
    if calls != expected_calls(i):
        problems.append(f"calls {calls}")
    call_ids = [m["call_id"] for m in result.messages if m.get("type") == "function_call"]
    outputs = [(m["call_id"], m["output"]) for m in result.messages if m.get("type") == "function_call_output"]
    if outputs != list(zip(call_ids, [str(i + 1000), str(i + 2000), str((i + 1000) * (i + 2000))], strict=True)):
        problems.append(f"outputs {outputs}")
    if result.output_text != f"({i} + 1000) * ({i} + 2000) = {(i + 1000) * (i + 2000)}.":
        problems.append(f"answer {result.output_text!r}")
    tool_starts = [e.detail for e in events if e.kind == "tool_start"]
    if tool_starts != [f"a={args['a']}, b={args['b']}" for _, args in expected_calls(i)]:
        problems.append(f"events {tool_starts}")
    return problems


def snapshot(agent: Agent) -> dict[str, Any]:
    """Every field of the Agent, compare=False ones included, as plain data."""
    fields = {f.name: getattr(agent, f.name) for f in dataclasses.fields(agent)}
    return {
        **{k: v for k, v in fields.items() if k not in ("client", "tools", "tools_by_name", "tool_schemas")},
        "client": id(fields["client"]),
        "tools": [
            (t.name, t.description, json.dumps(t.parameters, sort_keys=True), t.function, t.strict) for t in agent.tools
        ],
        "tools_by_name": {name: id(t) for name, t in agent.tools_by_name.items()},
        "tool_schemas": json.dumps(agent.tool_schemas, sort_keys=True),
    }


@pytest.mark.parametrize("parallel_tool_calls", [False, True], ids=["one call per turn", "parallel calls"])
@pytest.mark.parametrize("how", ["asyncio.gather(agent.run)", "run_concurrent"])
async def test_one_agent_many_concurrent_runs(server: OfflineServer, how: str, parallel_tool_calls: bool) -> None:
    agent = Agent(
        name="calc",
        instructions="Use the tools.",
        tools=MATH_TOOLS,
        parallel_tool_calls=parallel_tool_calls,
        client=client_for(server),
    )
    before = copy.deepcopy(dataclasses.replace(agent, client=None))  # (a client holds a connection pool)
    before_snapshot = snapshot(agent)
    events: list[list[AgentEvent]] = [[] for _ in range(N)]
    prompts = [prompt(i) for i in range(N)]
    if how == "run_concurrent":
        results = list(await run_concurrent(agent, prompts, on_event=lambda i, e: events[i].append(e)))
    else:
        results = await asyncio.gather(*(agent.run(p, on_event=events[i].append) for i, p in enumerate(prompts)))
    assert agent.client is not None
    await agent.client.close()
    results, events, agent, before, before_snapshot = results, events, agent, before, before_snapshot
    leaks = {i: problems for i, result in enumerate(results) if (problems := foreign_content(i, result, events[i]))}
    all_call_ids = [m["call_id"] for r in results for m in r.messages if m.get("type") == "function_call"]
    print(
        f"\n{how}, parallel_tool_calls={parallel_tool_calls}: {N} concurrent runs on one Agent, "
        f"{len(all_call_ids)} tool calls; {len(leaks)} transcripts with foreign content; "
        f"Agent unchanged: {agent == before and snapshot(agent) == before_snapshot}"
    )
    assert leaks == {}
    assert len(set(all_call_ids)) == 3 * N
    # The Agent is unchanged: equal to a deep copy taken before, schemas and tools included.
    assert agent == before
    assert agent.tool_schemas == before.tool_schemas
    assert json.dumps(agent.tool_schemas, sort_keys=True) == json.dumps(before.tool_schemas, sort_keys=True)
    assert [t.parameters for t in agent.tools] == [t.parameters for t in before.tools]
    assert snapshot(agent) == before_snapshot
