"""``stream: true`` on the offline server, through the real openai client, raw HTTP and the OpenAI Agents SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from agentlab.offline import FaultPlan, LatencyModel, OfflineServer, ServerConfig, start
from agentlab.tools.math import MATH_TOOLS

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
TOOLS = [t.schema() for t in MATH_TOOLS]


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.05), FaultPlan(retry_after=0.1))


def client_for(server: OfflineServer, retries: int = 0) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=retries)


async def raw_events(server: OfflineServer, body: dict[str, Any]) -> tuple[int, str, list[tuple[str, Any]]]:
    """POST a body and split its answer into (event name, data) pairs, exactly as they came on the wire."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.base_url + "/responses", json=body) as answer,
    ):
        text = await answer.text()
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return answer.status, answer.headers.get("Content-Type", ""), events


async def stats(server: OfflineServer) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(server.url + "/offline/stats") as answer:
            result: dict[str, Any] = await answer.json()
            return result

    return await get()


def without_ids(response: dict[str, Any]) -> dict[str, Any]:
    """A response without what names one request (ids, call ids, creation time), to compare two requests."""
    output = [{k: v for k, v in item.items() if k not in ("id", "call_id")} for item in response["output"]]
    return {**{k: v for k, v in response.items() if k not in ("id", "created_at")}, "output": output}


async def test_every_event_on_the_wire_is_valid_numbered_and_named_by_its_type(server: OfflineServer) -> None:
    body = {"model": "gpt-5-mini", "input": "What is 3 + 4, and 5 + 6?", "tools": TOOLS, "stream": True}
    status, kind, events = await raw_events(server, body)
    assert status == 200 and kind.startswith("text/event-stream")
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    for name, data in events:
        assert name == data["type"] and EVENTS.validate_python(data).type == name
    names = [name for name, _ in events]
    assert names.count("response.function_call_arguments.done") == 2 and names[-1] == "response.completed"

    async def non_streamed() -> dict[str, Any]:
        raw = await client_for(server).responses.with_raw_response.create(
            model="gpt-5-mini", input="What is 3 + 4, and 5 + 6?", extra_body={"tools": TOOLS}
        )
        result: dict[str, Any] = json.loads(raw.content)
        return result

    assert without_ids(events[-1][1]["response"]) == without_ids(await non_streamed())


async def test_responses_create_with_stream_true(server: OfflineServer) -> None:
    stream = await client_for(server).responses.create(model="gpt-5-mini", input="Hello, who are you?", stream=True)
    events = [event async for event in stream]
    events, text = events, "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1]
    assert final.type == "response.completed" and final.response.output_text == text and len(text) > 20


async def test_responses_stream_helper_runs_a_tool_loop_to_the_right_answer(server: OfflineServer) -> None:
    async def run() -> tuple[str, int]:
        client = client_for(server)
        items: list[Any] = [{"role": "user", "content": "What is (3 + 4) * 5?"}]
        for turn in range(1, 10):
            async with client.responses.stream(model="gpt-5-mini", input=items, tools=TOOLS) as stream:  # type: ignore[arg-type]
                async for event in stream:
                    EVENTS.validate_python(event.model_dump(mode="json", warnings=False))
                response = await stream.get_final_response()
            items += [item.model_dump(by_alias=True, exclude_none=True) for item in response.output]
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                return response.output_text, turn
            for call in calls:
                tool = next(t for t in MATH_TOOLS if t.name == call.name)
                items.append(
                    {"type": "function_call_output", "call_id": call.call_id, "output": await tool.call(call.arguments)}
                )
        raise AssertionError("no answer in 10 turns")

    text, turns = await run()
    assert "35" in text and turns == 3


async def test_the_text_is_paced_over_the_model_time() -> None:
    with start(ServerConfig(LatencyModel(time_scale=1.0))) as slow:
        stream = await client_for(slow).responses.create(
            model="gpt-5-mini", input="Hello, who are you? [duration=1]", stream=True
        )
        started, deltas = time.perf_counter(), []
        async for event in stream:
            if event.type == "response.created":
                started = time.perf_counter()
            elif event.type == "response.output_text.delta":
                deltas.append(time.perf_counter() - started)
        _, deltas, total = started, deltas, time.perf_counter() - started
    assert 0.8 < total < 2.0  # the whole stream takes the model's time
    assert 0.25 < deltas[0] / total < 0.65  # a first token after the thinking share (0.4 of it + one gap)
    halfway = deltas[len(deltas) // 2]
    assert 0.5 < halfway / total < 0.9  # the text keeps coming until the end, not all at once


@pytest.mark.parametrize("fault", ["500", "429"])
async def test_a_refused_stream_is_an_http_status_before_the_stream(server: OfflineServer, fault: str) -> None:
    body = {"model": "gpt-5-mini", "input": f"Hi [fault={fault}]", "stream": True}
    status, kind, _ = await raw_events_or_json(server, body)
    assert status == int(fault) and kind.startswith("application/json")

    async def retried() -> str:  # the first attempt refused, the client's own retry streams
        stream = await client_for(server, retries=2).responses.create(
            model="gpt-5-mini", input=f"Hello [fault={fault}x1]", stream=True
        )
        return [e async for e in stream][-1].type

    assert await retried() == "response.completed"


async def raw_events_or_json(server: OfflineServer, body: dict[str, Any]) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.post(server.base_url + "/responses", json=body) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), await answer.read()


@pytest.mark.parametrize(
    "extra",
    [{"stream": "yes"}, {"stream_options": {"include_obfuscation": False}}, {"stream": True, "stream_options": 3}],
)
async def test_parameters_that_cannot_be_streamed_are_a_400_before_the_stream(
    server: OfflineServer, extra: dict[str, Any]
) -> None:
    status, kind, raw = await raw_events_or_json(server, {"model": "gpt-5-mini", "input": "Hi", **extra})
    assert status == 400 and kind.startswith("application/json")
    assert json.loads(raw)["error"]["param"].startswith("stream")


async def test_include_obfuscation_false_drops_the_pad(server: OfflineServer) -> None:
    body = {"model": "gpt-5-mini", "input": "Hello", "stream": True, "stream_options": {"include_obfuscation": False}}
    _, _, events = await raw_events(server, body)
    deltas = [data for name, data in events if name.endswith(".delta")]
    assert deltas and not any("obfuscation" in d for d in deltas)


async def test_fault_drop_closes_the_connection_halfway(server: OfflineServer) -> None:
    async def run() -> list[str]:
        seen: list[str] = []
        stream = await client_for(server).responses.create(model="gpt-5-mini", input="Hello [fault=drop]", stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for event in stream:
                seen.append(event.type)
        return seen

    seen = await asyncio.wait_for(run(), 10)
    assert "response.created" in seen and "response.completed" not in seen and "response.failed" not in seen


async def test_fault_failed_ends_the_stream_with_response_failed(server: OfflineServer) -> None:
    stream = await client_for(server).responses.create(model="gpt-5-mini", input="Hello [fault=failed]", stream=True)
    events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.failed" and last.response.error is not None
    assert last.response.error.code == "server_error" and "response.completed" not in [e.type for e in events]


async def test_a_client_that_hangs_up_frees_the_conversation_at_once(server: OfflineServer) -> None:
    before = await stats(server)

    body = {"model": "gpt-5-mini", "input": "Hello, who are you? [duration=400]", "stream": True}  # 20 s here
    async with aiohttp.ClientSession() as session:
        answer = await session.post(server.base_url + "/responses", json=body)
        await answer.content.readuntil(b"\n\n")  # response.created: the stream is on
        answer.close()  # and the reader goes away
    started = time.perf_counter()
    while (await fetch_stats(server))["in_flight"] > 0:
        await asyncio.sleep(0.02)
        if time.perf_counter() - started > 3:
            raise AssertionError("the server still holds the conversation 3 s after the client left")
    freed_after = time.perf_counter() - started
    after = await stats(server)
    assert freed_after < 3 and after["disconnects"] == before["disconnects"] + 1 and after["in_flight"] == 0


async def fetch_stats(server: OfflineServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(server.url + "/offline/stats") as answer:
        result: dict[str, Any] = await answer.json()
        return result


async def test_the_agents_sdk_runs_streamed_to_the_right_answer(server: OfflineServer) -> None:
    agents = pytest.importorskip("agents", reason="the OpenAI Agents SDK is in the [bench] extra (openai-agents)")

    @agents.function_tool
    def sum_numbers(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @agents.function_tool
    def multiply_numbers(a: float, b: float) -> float:
        """Multiply two numbers."""
        return a * b

    agents.set_tracing_disabled(True)
    model = agents.OpenAIResponsesModel("gpt-5-mini", openai_client=client_for(server))
    agent = agents.Agent(name="calc", instructions="Use the tools.", tools=[sum_numbers, multiply_numbers], model=model)
    result = agents.Runner.run_streamed(agent, "What is (3 + 4) * 5?")
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    final, deltas = str(result.final_output), deltas
    assert "35" in final and "".join(deltas) == final


async def test_an_error_after_the_stream_started_is_an_error_event() -> None:
    """A bug of the server's own once the stream is on (here: an answer that is not JSON): an ``error`` event."""
    from aiohttp import web

    from agentlab.offline.app import send_events
    from agentlab.offline.responses import sse

    async def broken(request: web.Request) -> web.StreamResponse:
        body = {
            "id": "resp_1",
            "status": "completed",
            "output": [{"id": "rs_1", "type": "reasoning", "summary": [object()]}],
        }
        return await send_events(request, sse(body, 0.0), drop=False)

    async def run() -> str:
        async with answering_with(broken) as client:
            stream = await client.responses.create(model="gpt-5-mini", input="Hi", stream=True)
            with pytest.raises(openai.APIError) as caught:
                async for _ in stream:
                    pass
            return caught.value.message

    assert "The offline server failed" in await run()


@contextlib.asynccontextmanager
async def answering_with(handler: Any) -> AsyncIterator[AsyncOpenAI]:
    """A bare aiohttp app whose POST /v1/responses is ``handler``, and an openai client (no retries) pointed at it."""
    from aiohttp import web

    app = web.Application()
    app.router.add_post("/v1/responses", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()
