"""``Agent(stream=True)`` against the offline server: the same results, text deltas on the way, faults as errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from test_stream_server import answering_with

from agentlab import Agent, run_bounded, run_settled
from agentlab.errors import BackendError
from agentlab.model import read_events
from agentlab.offline import FaultPlan, LatencyModel, OfflineServer, ServerConfig
from agentlab.records import AgentEvent, Fulfilled, Rejected
from agentlab.tools.math import MATH_TOOLS


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.05), FaultPlan(retry_after=0.1))


def agent_for(server: OfflineServer, *, stream: bool = True, retries: int = 0) -> Agent:
    client = AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=retries)
    return Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=stream, client=client)


async def stats(server: OfflineServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(server.url + "/offline/stats") as answer:
        result: dict[str, Any] = await answer.json()
        return result


async def test_a_streamed_run_gives_the_same_result_and_its_text_on_the_way(server: OfflineServer) -> None:
    events: list[AgentEvent] = []
    prompt = "What is (3 + 4) * 5?"
    streamed = await agent_for(server).run(prompt, on_event=events.append)
    plain = await agent_for(server, stream=False).run(prompt)
    assert (streamed.output_text, streamed.turns) == (plain.output_text, plain.turns) == (plain.output_text, 3)
    assert "35" in streamed.output_text and streamed.usage == plain.usage
    kinds = [e.kind for e in events]
    deltas = [e.detail for e in events if e.kind == "text_delta"]
    assert len(deltas) > 3 and "".join(deltas) == streamed.output_text
    assert kinds.index("text_delta") < len(kinds) - 1 - kinds[::-1].index("model_end")  # before the turn ends
    assert streamed.messages == plain.messages or len(streamed.messages) == len(plain.messages)


async def test_a_dropped_stream_is_rejected_with_a_clear_error_and_the_others_are_kept(server: OfflineServer) -> None:
    prompts = ["What is 1 + 2?", "What is 3 + 4? [fault=drop]", "Hello there"]
    outcomes = await asyncio.wait_for(run_settled(agent_for(server), prompts), 20)  # nothing hangs
    assert [o.status for o in outcomes] == ["fulfilled", "rejected", "fulfilled"]
    reason = outcomes[1].reason  # type: ignore[union-attr]
    assert isinstance(reason, BackendError)
    assert "closed the connection in the middle of a streamed response" in str(reason)
    assert "run_settled keeps the other conversations" in str(reason)


async def test_a_failed_stream_is_rejected_with_the_reason_the_server_gave(server: OfflineServer) -> None:
    outcomes = await run_settled(agent_for(server), ["Hello [fault=failed]"])
    assert isinstance(outcomes[0], Rejected) and isinstance(outcomes[0].reason, BackendError)
    assert "stopped in the middle of a streamed response (failed, server_error" in str(outcomes[0].reason)


async def test_a_refused_stream_is_retried_by_the_client_before_it_starts(server: OfflineServer) -> None:
    outcomes = await run_settled(agent_for(server, retries=2), ["What is 2 + 2? [fault=429x1]"])
    assert isinstance(outcomes[0], Fulfilled) and "4" in outcomes[0].value.output_text


async def test_cutting_a_streamed_conversation_frees_it_on_the_server(server: OfflineServer) -> None:
    before = await stats(server)
    slow = ["Hello there [duration=200]"]  # 10 s at this time scale
    outcomes = await run_bounded(agent_for(server), slow, max_concurrency=1, timeout=0.3)
    for _ in range(100):
        after = await stats(server)
        if after["in_flight"] == 0:
            break
        await asyncio.sleep(0.02)
    before, after, statuses = before, after, [o.status for o in outcomes]
    assert statuses == ["rejected"]
    assert after["in_flight"] == 0 and after["disconnects"] == before["disconnects"] + 1


async def test_server_sent_events_are_read_as_sent_and_a_break_is_a_backend_error() -> None:
    async def lines(broken: bool) -> AsyncIterator[str]:
        for line in ["event: response.created", 'data: {"a": 1}', "", ": a comment", "data: x", "data: y", ""]:
            yield line
        if broken:
            raise ConnectionResetError("peer closed connection")

    async def read(broken: bool) -> list[tuple[str, str]]:
        return [event async for event in read_events(lines(broken))]

    assert await read(False) == [("response.created", '{"a": 1}'), ("", "x\ny")]
    with pytest.raises(BackendError, match="closed the connection in the middle .* after 2 events"):
        await read(True)


async def test_an_error_event_is_a_backend_error_that_says_what_the_server_said() -> None:
    from aiohttp import web

    from agentlab.offline.app import send_events
    from agentlab.offline.responses import sse

    async def broken(request: web.Request) -> web.StreamResponse:  # an answer that cannot be sent as JSON
        body = {
            "id": "resp_1",
            "status": "completed",
            "output": [{"id": "rs_1", "type": "reasoning", "summary": [{1}]}],
        }
        return await send_events(request, sse(body, 0.0), drop=False)

    async def run() -> BaseException:
        async with answering_with(broken) as client:
            outcomes = await run_settled(Agent("a", "b", stream=True, client=client), ["Hi"])
            assert isinstance(outcomes[0], Rejected)
            return outcomes[0].reason

    reason = await run()
    assert isinstance(reason, BackendError)
    assert "reported an error in the stream: The offline server failed" in str(reason)
