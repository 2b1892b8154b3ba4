"""The offline API in this process: the real openai client over ``agentlab.offline.transport()``, no socket."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab import Agent
from agentlab.offline import FaultPlan, LatencyModel, ServerConfig, transport
from agentlab.tools.math import MATH_TOOLS

FAST = ServerConfig(LatencyModel(time_scale=0.01))


def client_over(server_transport: httpx.AsyncBaseTransport, **options: object) -> AsyncOpenAI:
    http = httpx.AsyncClient(transport=server_transport)
    return AsyncOpenAI(base_url="http://offline.invalid/v1", api_key="offline", http_client=http, **options)  # type: ignore[arg-type]


async def test_an_agent_runs_a_tool_calling_math_conversation_in_process() -> None:
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, client=client_over(transport(FAST)))
    result = await agent.run("What is (7 + 8) * (2 + 3)?")
    assert result.output_text == "(7 + 8) * (2 + 3) = 75."
    calls = [item for item in result.messages if isinstance(item, dict) and item.get("type") == "function_call"]
    assert [call["name"] for call in calls] == ["sum_numbers", "sum_numbers", "multiply_numbers"]
    assert result.turns == 3  # two sums at once, the product, then the answer


async def test_a_streamed_conversation_tells_the_same_answer_event_by_event() -> None:
    client = client_over(transport(FAST))
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True, client=client)
    result = await agent.run("What is 12 + 30?")
    assert result.output_text == "12 + 30 = 42."
    stream = await client.responses.create(model="gpt-5-mini", input="Hello", stream=True)
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == events[-1].response.output_text and deltas.startswith("Hello!")


async def test_a_bad_request_is_a_400_in_openais_shape() -> None:
    client = client_over(transport(FAST), max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="gpt-5-mini", input=[{"type": "function_call_output", "call_id": "c9", "output": "1"}]
        )  # type: ignore[list-item]
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "No tool call found for function call output with call_id c9.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "invalid_value",
    }


async def test_models_stats_and_unknown_paths_answer_as_the_http_server_does() -> None:
    offline = transport(FAST)
    client = client_over(offline, max_retries=0)
    assert [m.id for m in (await client.models.list()).data][:2] == ["gpt-5-mini", "gpt-5"]
    with pytest.raises(openai.NotFoundError, match="does not exist offline"):
        await client.models.retrieve("gpt-9")
    async with httpx.AsyncClient(transport=offline, base_url="http://offline.invalid") as http:
        missing = await http.get("/v1/nothing")
        wrong = await http.get("/v1/responses")
        stats = (await http.get("/offline/stats")).json()
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")
    assert stats["statuses"] == {"200": 1, "404": 2, "405": 1} and stats["in_flight"] == 0


async def test_faults_markers_and_latency_go_through_the_servers_own_code() -> None:
    client = client_over(transport(FAST), max_retries=0)
    with pytest.raises(openai.InternalServerError, match="on purpose"):
        await client.responses.create(model="gpt-5-mini", input="[fault=500] What is 1 + 1?")
    with pytest.raises(openai.RateLimitError) as limited:
        await client.responses.create(model="gpt-5-mini", input="[fault=429] What is 1 + 1?")
    assert limited.value.response.headers["retry-after"] == "1"
    retried = client_over(transport(FAST), max_retries=1)  # [fault=429x1]: the client's own retry gets through
    answer = await retried.responses.create(model="gpt-5-mini", input="[fault=429x1] What is 1 + 1?")
    assert answer.output_text == "1 + 1 = 2."
    slow = ServerConfig(LatencyModel(time_scale=0.02))
    started = time.perf_counter()
    await client_over(transport(slow)).responses.create(model="m", input="[duration=10] What is 1 + 1?")
    assert time.perf_counter() - started >= 10 * 0.02  # the marker's time, scaled, and never less


async def test_a_hang_ends_in_the_clients_timeout_and_a_drop_breaks_the_stream() -> None:
    config = ServerConfig(LatencyModel(time_scale=0.01), FaultPlan(hang_seconds=60))
    client = client_over(transport(config), max_retries=0, timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        await client.responses.create(model="gpt-5-mini", input="[fault=hang] What is 1 + 1?")
    assert time.perf_counter() - started < 30
    stream = await client.responses.create(model="gpt-5-mini", input="[fault=drop] What is 1 + 1?", stream=True)
    with pytest.raises(openai.APIConnectionError):  # as over a socket whose peer hung up mid-stream
        async for _ in stream:
            pass


async def test_a_transport_with_a_limit_answers_429_with_the_real_apis_headers() -> None:
    client = client_over(transport(FAST, rpm=2), max_retries=0)
    first = await client.responses.with_raw_response.create(model="gpt-5-mini", input="What is 1 + 1?")
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    Response.model_validate(first.parse().model_dump())
    await client.responses.create(model="gpt-5-mini", input="What is 1 + 1?")
    with pytest.raises(openai.RateLimitError, match="Rate limit reached .* requests per min"):
        await client.responses.create(model="gpt-5-mini", input="What is 1 + 1?")


async def test_many_conversations_at_once_share_one_transport() -> None:
    agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, client=client_over(transport(FAST)))
    results = await asyncio.gather(*(agent.run(f"What is {n} + {n}?") for n in range(50)))
    assert [r.output_text for r in results] == [f"{n} + {n} = {2 * n}." for n in range(50)]
