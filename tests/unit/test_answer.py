"""The seams of the offline server: answer() without HTTP, one token rule, markers off, and status counting."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openai.types.responses import Response

from agentlab.offline import LatencyModel, ServerConfig, create_app, start
from agentlab.offline.answer import Answer, answer
from agentlab.offline.background import add_serve_arguments, config_from_args
from agentlab.offline.tokens import input_tokens
from agentlab.offline.validation import RequestError
from agentlab.tools.math import MATH_TOOLS

TOOLS = [t.schema() for t in MATH_TOOLS]
FAST = ServerConfig(LatencyModel(time_scale=0.01))


async def post_all(url: str, bodies: list[Any]) -> list[tuple[int, Any]]:
    async with aiohttp.ClientSession() as session:
        answers = []
        for body in bodies:
            data = body if isinstance(body, bytes) else json.dumps(body)
            async with session.post(url + "/v1/responses", data=data) as r:
                answers.append((r.status, await r.json(content_type=None)))
        return answers


def test_answer_is_the_api_without_http() -> None:
    reply = answer({"model": "gpt-5-mini", "input": "What is 12 + 30?", "tools": TOOLS}, FAST, "k1")
    assert isinstance(reply, Answer) and reply.delay > 0
    response = Response.model_validate(reply.body)
    assert response.id == "resp_k1" and [i.type for i in response.output] == ["reasoning", "function_call"]
    assert answer({"model": "gpt-5-mini", "input": "What is 12 + 30?"}, FAST, "k1").body["output"][1]["content"][0][
        "text"
    ] == ("12 + 30 = 42.")
    with pytest.raises(RequestError, match="Missing required parameter: 'input'"):
        answer({"model": "gpt-5-mini"}, FAST, "k1")


def test_a_duration_marker_is_spread_over_the_planned_turns() -> None:
    config = ServerConfig(LatencyModel(time_scale=0.1))
    reply = answer({"model": "m", "input": "[duration=6] What is 1 + 2 + 3?", "tools": TOOLS}, config, "k")
    assert reply.delay == pytest.approx(6 * 0.1 / 3)  # two sums one after the other, then the answer


async def test_input_tokens_count_what_the_model_reads() -> None:
    body = {"model": "gpt-5-mini", "input": "x" * 400}
    assert input_tokens(body) == math.ceil(len(json.dumps([None, "x" * 400, None])) / 4)
    assert input_tokens({**body, "metadata": {"a": "b" * 1000}, "store": False}) == input_tokens(body)
    assert input_tokens({**body, "tools": TOOLS}) > input_tokens(body) + 50
    assert input_tokens({"model": "m", "input": ""}) >= 1
    with start(FAST) as server:
        [(status, response)] = await post_all(server.url, [{**body, "metadata": {"a": "b" * 1000}}])
    assert status == 200 and response["usage"]["input_tokens"] == input_tokens(body)


async def test_with_markers_off_the_server_and_the_model_take_markers_for_text() -> None:
    plain = ServerConfig(LatencyModel(time_scale=0.05), markers=False)
    prompts = ["[fault=500] What is 2 + 3?", "[fault=hang] What is 2 + 3?", "[duration=60] What is 2 + 3?"]
    started = time.perf_counter()
    with start(plain) as server:
        answers = await post_all(server.url, [{"model": "m", "input": p} for p in prompts])
        looped = answer({"model": "m", "input": "[loop] What is 2 + 3?", "tools": TOOLS}, plain, "k")
        mistaken = answer({"model": "m", "input": "[mistake=bad_json] What is 2 + 3?", "tools": TOOLS}, plain, "k")
    assert time.perf_counter() - started < 30, "a [duration=60] or a hang was obeyed"
    assert [status for status, _ in answers] == [200, 200, 200]
    assert all(r["output"][1]["content"][0]["text"] == "2 + 3 = 5." for _, r in answers)
    assert looped.body["output"][1]["arguments"] == '{"a":2,"b":3}'
    assert mistaken.body["output"][1]["arguments"] == '{"a":2,"b":3}'
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert config_from_args(parser.parse_args(["--no-markers"])).markers is False
    assert config_from_args(parser.parse_args([])).markers is True


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
