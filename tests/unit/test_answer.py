"""The seams of the offline server: answer() without HTTP, one token rule, and markers off."""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import httpx
import pytest
from openai.types.responses import Response

from agentlab.bucket import input_tokens
from agentlab.offline import LatencyModel, ServerConfig, transport
from agentlab.offline.responses import Answer, RequestError, answer
from agentlab.offline.serve import add_serve_arguments, config_from_args
from agentlab.tools.math import MATH_TOOLS

TOOLS = [t.schema() for t in MATH_TOOLS]
FAST = ServerConfig(LatencyModel(time_scale=0.01))


async def post_all(config: ServerConfig, bodies: list[Any]) -> list[tuple[int, Any]]:
    """POST each body to /v1/responses of an offline API in this process (``transport``), one after another."""
    async with httpx.AsyncClient(transport=transport(config), base_url="http://offline.invalid") as http:
        answers = []
        for body in bodies:
            r = await http.post("/v1/responses", json=body)
            answers.append((r.status_code, r.json()))
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
    [(status, response)] = await post_all(FAST, [{**body, "metadata": {"a": "b" * 1000}}])
    assert status == 200 and response["usage"]["input_tokens"] == input_tokens(body)


async def test_with_markers_off_the_server_and_the_model_take_markers_for_text() -> None:
    plain = ServerConfig(LatencyModel(time_scale=0.05), markers=False)
    prompts = ["[fault=500] What is 2 + 3?", "[fault=hang] What is 2 + 3?", "[duration=60] What is 2 + 3?"]
    started = time.perf_counter()
    answers = await post_all(plain, [{"model": "m", "input": p} for p in prompts])
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
