"""The offline server, through the real openai client and raw HTTP: shapes, validation, faults, load."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab.offline import FaultPlan, LatencyModel, OfflineServer, ServerConfig, create_app, start
from agentlab.tools.math import MATH_TOOLS

TOOLS = [t.schema() for t in MATH_TOOLS]


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.01), FaultPlan(retry_after=0.2), max_body_bytes=64_000)


async def post(server: OfflineServer, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.base_url + "/responses", data=data, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def stats(server: OfflineServer) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(server.url + "/offline/stats") as response:
            result: dict[str, Any] = await response.json()
            return result

    return await get()


async def tool_loop(client: AsyncOpenAI, prompt: str, parallel: bool) -> tuple[str, list[dict[str, Any]]]:
    """A plain Responses API tool loop; every raw answer is validated by openai's own Response model."""
    items: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    for _ in range(10):
        raw = await client.responses.with_raw_response.create(
            model="gpt-5-mini",
            input=items,
            tools=TOOLS,
            parallel_tool_calls=parallel,  # type: ignore[arg-type]
        )
        response = Response.model_validate(json.loads(raw.content))
        items += [item.model_dump(by_alias=True, exclude_none=True) for item in response.output]
        calls = [i for i in response.output if i.type == "function_call"]
        if not calls:
            return response.output_text, items
        for call in calls:
            tool = next(t for t in MATH_TOOLS if t.name == call.name)
            output = await tool.call(call.arguments)
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
    raise AssertionError("no answer")


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize(("prompt", "answer"), [("What is 12 + 30?", "42"), ("(7 + 8) * (2 + 3)", "75")])
async def test_the_real_client_runs_a_tool_loop(
    server: OfflineServer, prompt: str, answer: str, parallel: bool
) -> None:
    async def main() -> tuple[str, list[dict[str, Any]]]:
        async with AsyncOpenAI(base_url=server.base_url, api_key="anything") as client:
            return await tool_loop(client, prompt, parallel)

    text, items = await main()
    assert text.endswith(f"= {answer}.")
    first_turn_calls = 0
    for item in items[2:]:  # after the user message and the first reasoning item
        if item["type"] != "function_call":
            break
        first_turn_calls += 1
    assert first_turn_calls == (2 if parallel and "*" in prompt else 1)
    calls = [i for i in items if i.get("type") == "function_call"]
    assert all(c["call_id"].startswith("call_") and c["id"].startswith("fc_") for c in calls)
    assert len({c["call_id"] for c in calls}) == len(calls)


async def test_answer_shape_matches_the_documented_example(server: OfflineServer) -> None:
    status, body = await post(
        server,
        {
            "model": "gpt-5-mini",
            "input": "What is 3 + 4, and 5 + 6?",
            "tools": TOOLS,
            "instructions": "Use the tools.",
            "reasoning": {"effort": "low"},
            "metadata": {"k": "v"},
        },
    )
    assert status == 200
    response = Response.model_validate(body)
    assert [o.type for o in response.output] == ["reasoning", "function_call", "function_call"]
    assert json.loads(body["output"][1]["arguments"]) == {"a": 3, "b": 4}
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert body["reasoning"]["effort"] == "low" and body["metadata"] == {"k": "v"}
    assert body["id"].startswith("resp_") and body["output"][0]["id"].startswith("rs_")


async def test_same_request_same_answer(server: OfflineServer) -> None:
    body = {"model": "gpt-5-mini", "input": "(7 + 8) * (2 + 3)", "tools": TOOLS}
    first, second = (await post(server, body))[1], (await post(server, body))[1]
    first.pop("created_at"), second.pop("created_at")
    assert first == second


GOOD = {"model": "gpt-5-mini", "input": "What is 1 + 1?"}


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        (b"{not json", 400, None, "could not parse the JSON"),
        (b"[1, 2]", 400, None, "must be a JSON object"),
        (b"\xff\xfe\x00", 400, None, "not valid UTF-8"),
        ({"input": "hi"}, 400, "model", "Missing required parameter: 'model'"),
        ({"model": "gpt-5-mini"}, 400, "input", "Missing required parameter: 'input'"),
        ({"model": 5, "input": "hi"}, 400, "model", "expected a string"),
        ({"model": "m", "input": 5}, 400, "input", "expected a string or a list"),
        ({"model": "m", "input": [5]}, 400, "input[0]", "expected an object"),
        ({"model": "m", "input": [{"type": "image_generation_call"}]}, 400, "input[0].type", "not supported"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, 400, "input[0].role", "expected one of"),
        ({"model": "m", "input": [{"type": []}]}, 400, "input[0].type", "not supported"),  # found by the fuzzer
        ({"model": "m", "input": [{"role": {"a": 1}, "content": "x"}]}, 400, "input[0].role", "expected one of"),
        ({**GOOD, "tools": {"a": 1}}, 400, "tools", "expected a list"),
        ({**GOOD, "tools": [{"type": "web_search"}]}, 400, "tools[0].type", "Unknown tool type"),
        ({**GOOD, "tools": [{"type": "function"}]}, 400, "tools[0].name", "Missing required parameter"),
        ({**GOOD, "parallel_tool_calls": "yes"}, 400, "parallel_tool_calls", "true or false"),
        ({**GOOD, "max_output_tokens": True}, 400, "max_output_tokens", "an integer"),
        ({**GOOD, "stream": "yes"}, 400, "stream", "expected true or false"),
        (b"[" * 5000 + b"]" * 5000, 400, None, "nested too deeply"),
        (b'{"model": "m", "input": "hi", "max_output_tokens": ' + b"9" * 5000 + b"}", 400, None, "number too large"),
        ({**GOOD, "reasoning": {"effort": "extreme"}}, 400, "reasoning.effort", "use one of"),
        ({**GOOD, "metadata": {"run": 5}}, 400, "metadata", "must be strings"),
        ({**GOOD, "previous_response_id": "resp_1"}, 400, "previous_response_id", "keeps no state"),
        (
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": "1+1"},
                    {"type": "function_call_output", "call_id": "call_x", "output": "2"},
                ],
            },
            400,
            "input",
            "No tool call found for function call output with call_id call_x",
        ),
        (
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": "1+1"},
                    {"type": "function_call", "call_id": "call_y", "name": "f", "arguments": "{}"},
                ],
            },
            400,
            "input",
            "No tool output found for function call call_y",
        ),
    ],
)
async def test_bad_requests_get_clear_openai_shaped_errors(
    server: OfflineServer, body: Any, status: int, param: str | None, words: str
) -> None:
    got_status, got = await post(server, body)
    assert got_status == status
    assert set(got["error"]) == {"message", "type", "param", "code"}
    assert got["error"]["type"] == "invalid_request_error"
    assert got["error"]["param"] == param
    assert words in got["error"]["message"]


async def test_unknown_path_wrong_method_and_too_large(server: OfflineServer) -> None:
    async def main() -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession() as session:
            answers = []
            for method, path, data in [
                ("GET", "/v1/nothing", None),
                ("GET", "/v1/responses", None),
                ("POST", "/v1/responses", b"x" * 100_000),
            ]:
                async with session.request(method, server.url + path, data=data) as r:
                    answers.append((r.status, await r.json(content_type=None)))
            return answers

    (s404, b404), (s405, b405), (s413, b413) = await main()
    assert (s404, s405, s413) == (404, 405, 413)
    assert "POST /v1/responses" in b404["error"]["message"]
    assert "not allowed" in b405["error"]["message"]
    assert "larger than 64000 bytes" in b413["error"]["message"]


async def test_models_endpoint(server: OfflineServer) -> None:
    async def main() -> list[str]:
        async with AsyncOpenAI(base_url=server.base_url, api_key="x") as client:
            return [m.id async for m in client.models.list()]

    assert "gpt-5-mini" in await main()


async def test_any_authorization_is_accepted_and_never_logged(
    server: OfflineServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-never-log-this-0123456789abcdef"
    with caplog.at_level(logging.DEBUG):
        for headers in ({"Authorization": f"Bearer {secret}"}, {}, {"Authorization": "garbage"}):
            assert (await post(server, GOOD, headers))[0] == 200
    assert secret not in caplog.text


async def test_faults_reach_the_client_as_openai_errors(server: OfflineServer) -> None:
    before = await stats(server)
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(model="m", input="What is 1 + 1? [fault=500]")
        with pytest.raises(openai.RateLimitError) as caught:
            await client.responses.create(model="m", input="What is 1 + 1? [fault=429]")
        assert caught.value.response.headers["retry-after-ms"] == "2"
        assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=2) as client:
        response = await client.responses.create(model="m", input="What is 1 + 1? [fault=429x1]", tools=TOOLS)  # type: ignore[arg-type]
        assert response.output[1].type == "function_call"
    after = await stats(server)
    assert after["faults"].get("429", 0) - before["faults"].get("429", 0) == 2
    assert after["faults"].get("500", 0) - before["faults"].get("500", 0) == 1


async def test_a_hang_is_cut_by_the_client_and_the_server_sees_the_disconnect(server: OfflineServer) -> None:
    before = (await stats(server))["disconnects"]

    async def main() -> None:
        async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=0.3) as client:
            with pytest.raises(openai.APITimeoutError):
                await client.responses.create(model="m", input="What is 1 + 1? [fault=hang]")

    await main()
    for _ in range(50):
        if (await stats(server))["disconnects"] > before:
            break
        await asyncio.sleep(0.05)
    assert (await stats(server))["disconnects"] == before + 1


async def test_a_thousand_simultaneous_requests_are_all_served_at_once() -> None:
    """No request is refused, and the server holds them all at the same time (no lock, no thread per request).

    The backlog that lets 1000 *connections* arrive at once is tested in test_background.py.
    """
    config = ServerConfig(LatencyModel(base=2.0, per_output_token=0, jitter=0, time_scale=1.0))

    async def main(url: str) -> list[int]:
        body = json.dumps(GOOD).encode()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one() -> int:
                async with session.post(url, data=body) as r:
                    await r.read()
                    return r.status

            return await asyncio.gather(*(one() for _ in range(1000)))

    with start(config) as server:
        statuses = await main(server.base_url + "/responses")
        peak = (await stats(server))["peak_in_flight"]
    print(f"\n1000 simultaneous requests: {statuses.count(200)} answered 200, up to {peak} in flight at once")
    assert statuses.count(200) == 1000
    assert peak >= 900  # each waits 2 s; only making 1000 connections in one process (~1.4 s here) spreads them


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def count_statuses() -> dict[str, Any]:
    """Run a real offline app with one extra route that fails; send it a 413, a 500, a 400 and a 417."""

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: only aiohttp's own limit can refuse it
        for _ in range(10):
            yield b"x" * 500

    app = create_app(ServerConfig(LatencyModel(time_scale=0.01), max_body_bytes=1000))
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/v1/responses", data=chunks()) as r:
                assert r.status == 413 and (await r.json())["error"]["code"] == "request_too_large"
            async with session.get(url + "/broken") as r:
                assert r.status == 500 and "RuntimeError: a bug" in (await r.json())["error"]["message"]
            async with session.post(url + "/v1/responses", data=b"{") as r:
                assert r.status == 400
            async with session.post(url + "/v1/responses", data=b"{}", headers={"Expect": "teapot"}) as r:
                assert r.status == 417 and (await r.json())["error"]["code"] == "expectation_failed"
            async with session.get(url + "/offline/stats") as r:
                result: dict[str, Any] = await r.json()
                return result
    finally:
        await runner.cleanup()


async def test_every_status_is_counted_even_413_and_500() -> None:
    stats = await count_statuses()
    assert stats["statuses"] == {"400": 1, "413": 1, "417": 1, "500": 1}
    assert stats["requests"] == 4 and stats["in_flight"] == 0
