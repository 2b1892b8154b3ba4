"""Hypothesis throws malformed bodies, headers and content types at the offline server: only 4xx, never a crash."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentlab.offline import LatencyModel, OfflineServer, ServerConfig, start

LIMIT = 32_000
STATUSES: Counter[int] = Counter()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
FIELDS = {
    "model": st.text(max_size=10) | JSON,
    "input": st.text(max_size=20) | st.lists(JSON | st.fixed_dictionaries(
        {"type": st.sampled_from(["function_call", "function_call_output", "message", "reasoning", "x"]),
         "call_id": st.text(max_size=5) | JSON, "role": st.sampled_from(["user", "robot"]) | JSON,
         "content": JSON, "output": JSON, "name": JSON, "arguments": JSON}), max_size=4),
    "tools": JSON | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["function", "web"]) | JSON,
                                                    "name": JSON, "parameters": JSON}), max_size=3),
    "stream": JSON, "previous_response_id": JSON, "parallel_tool_calls": JSON, "max_output_tokens": JSON,
    "metadata": JSON, "reasoning": JSON, "store": JSON, "temperature": JSON, "instructions": JSON,
}  # fmt: skip
BODIES = (
    st.binary(max_size=200)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries({}, optional=FIELDS).map(lambda d: json.dumps(d).encode())
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/plain", "multipart/form-data", "", "application/x-www-form-urlencoded; charset=latin-1"]
)
HEADER_NAMES = st.sampled_from(["Authorization", "X-Stainless-Retry-Count", "OpenAI-Beta", "Accept"])
PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
HEADERS = st.dictionaries(HEADER_NAMES, PRINTABLE, max_size=3)


@pytest.fixture(scope="module")
def server() -> Iterator[OfflineServer]:
    with start(ServerConfig(LatencyModel(time_scale=0.001), max_body_bytes=LIMIT)) as s:
        yield s


def send(server: OfflineServer, body: bytes, content_type: str, headers: dict[str, str]) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.base_url + "/responses", data=body, headers={**headers, "Content-Type": content_type}
            ) as response,
        ):
            return response.status, await response.json(content_type=None)

    return asyncio.run(go())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=CONTENT_TYPES, headers=HEADERS)
def test_malformed_requests_get_4xx_in_openai_shape(
    server: OfflineServer, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    status, answer = send(server, body, content_type, headers)
    STATUSES[status] += 1
    assert status < 500, answer
    if status != 200:
        assert 400 <= status < 500
        assert set(answer["error"]) == {"message", "type", "param", "code"}
        assert answer["error"]["message"]


def test_the_server_still_answers_afterwards(server: OfflineServer) -> None:
    print(f"\nfuzzed answers by status: {dict(sorted(STATUSES.items()))} ({sum(STATUSES.values())} requests)")
    assert sum(STATUSES.values()) >= 500
    assert not [s for s in STATUSES if s >= 500]
    status, answer = send(
        server, json.dumps({"model": "gpt-5-mini", "input": "What is 2 + 2?"}).encode(), "application/json", {}
    )
    assert status == 200 and answer["output"][-1]["content"][0]["text"] == "2 + 2 = 4."


def test_too_large_a_body_is_refused_before_it_is_read(server: OfflineServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000\r\n\r\n{")  # fmt: skip
        reply = conn.recv(4096).decode()
    print(f"\n1 GB Content-Length: {reply.splitlines()[0]}")
    assert reply.startswith("HTTP/1.1 413")
    body = json.loads(reply.split("\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_too_large"
