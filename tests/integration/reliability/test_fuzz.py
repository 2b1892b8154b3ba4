"""Hypothesis throws malformed bodies, headers and content types at the offline server (raw aiohttp, not the openai
client): every answer that is not a 200 is a 4xx in OpenAI's error shape, never a 5xx, and the server still answers
a valid request afterwards. A body that is too large is refused (413) before it is read.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
import time
import zlib
from collections import Counter
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlab.offline import LatencyModel, OfflineServer, ServerConfig

LIMIT = 32_000
VALID = {"model": "gpt-5-mini", "input": "What is 2 + 2?"}
EXAMPLES = 600

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
TOOL = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "web_search", ""]) | JSON},
    optional={
        "name": st.sampled_from(["sum_numbers", "multiply_numbers", ""]) | JSON,
        "parameters": JSON,
        "description": JSON,
        "strict": JSON,
    },
)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "x"]) | JSON,
        "role": st.sampled_from(["user", "assistant", "system", "developer", "robot"]) | JSON,
        "content": st.text(max_size=30)
        | st.lists(st.fixed_dictionaries({"type": st.just("input_text")}, optional={"text": JSON}), max_size=3)
        | JSON,
        "call_id": st.sampled_from(["call_1", "call_2"]) | JSON,
        "output": JSON,
        "name": JSON,
        "arguments": JSON,
        "id": JSON,
        "summary": JSON,
    },
)
PROMPTS = ["What is 2 + 2?", "", "What is 1 + 1? [mistake=bad_json]", "[loop]", "(" * 50, "[duration=1]"]
FIELDS = {
    "model": st.sampled_from(["gpt-5-mini", "no-such-model", ""]) | JSON,
    # (no [fault=…] marker here: those 500s and hangs are on purpose)
    "input": st.sampled_from(PROMPTS) | st.text(max_size=40) | st.lists(ITEM | JSON, max_size=4) | JSON,
    "tools": st.lists(TOOL | JSON, max_size=3) | JSON,
    "instructions": JSON,
    "stream": JSON,
    "previous_response_id": JSON,
    "parallel_tool_calls": JSON,
    "max_output_tokens": JSON,
    "metadata": JSON,
    "reasoning": JSON,
    "store": JSON,
    "temperature": JSON,
    "tool_choice": JSON,
    "text": JSON,
    "include": JSON,
    "user": JSON,
}
# Start from a valid request and change some fields, or build one from nothing, or send any JSON, or any bytes.
REQUESTS = st.fixed_dictionaries(
    {k: st.just(v) | FIELDS[k] for k, v in VALID.items()}, optional={k: v for k, v in FIELDS.items() if k not in VALID}
) | st.fixed_dictionaries({}, optional=FIELDS)
BODIES = (
    REQUESTS.map(lambda d: json.dumps(d).encode())
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
    | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | REQUESTS.map(lambda d: json.dumps(d).encode()).flatmap(
        lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda cut: b[:cut])  # a truncated JSON body
    )
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "text/plain",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "",
        "application/octet-stream",
        "*/*",
        "application/json; charset=utf-16",
        ";;;",
        "application/json; boundary",
    ]
)
PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Authorization",
            "X-Stainless-Retry-Count",
            "OpenAI-Beta",
            "Accept",
            "Accept-Encoding",
            "OpenAI-Organization",
            "Idempotency-Key",
            "X-Request-Id",
            "Connection",
            "Cookie",
        ]
    ),
    PRINTABLE | st.sampled_from(["Bearer sk-abc", "-1", "99999999999999999999", "application/json", "close"]),
    max_size=4,
)
# Compression that really decodes: the server must read these bodies like plain ones. (A body that does not
# decode is a separate test below: today it is a 500.)
ENCODINGS = st.sampled_from(["", "identity", "gzip", "deflate"])


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.0001), max_body_bytes=LIMIT)


def encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


def send(
    server: OfflineServer, body: bytes, headers: dict[str, str], path: str = "/v1/responses", method: str = "POST"
) -> tuple[int, str, Any]:
    async def go() -> tuple[int, str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, server.url + path, data=body, headers=headers) as response,
        ):
            text = await response.text(errors="replace")
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = text
            return response.status, response.headers.get("Content-Type", ""), decoded

    return asyncio.run(go())


def assert_openai_error(status: int, content_type: str, answer: Any) -> None:
    assert 400 <= status < 500, (status, answer)
    assert content_type.startswith("application/json"), (content_type, answer)
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    error = answer["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)


def test_malformed_requests_get_a_4xx_in_openai_shape_and_the_server_still_answers(server: OfflineServer) -> None:
    """The tally lives in this test, so it passes alone, under -k, and in any order."""
    statuses: Counter[int] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(
        body=BODIES,
        content_type=CONTENT_TYPES,
        headers=HEADERS,
        encoding=ENCODINGS,
        path=st.sampled_from(
            ["/v1/responses"] * 8 + ["/v1/responses/", "/v1/models", "/v1/response", "/v1//responses"]
        ),
    )
    def fuzz(body: bytes, content_type: str, headers: dict[str, str], encoding: str, path: str) -> None:
        sent = {**headers, "Content-Type": content_type}
        if encoding:
            sent["Content-Encoding"] = encoding
        status, kind, answer = send(server, encode(body, encoding), sent, path)
        statuses[status] += 1
        if status == 200:
            assert path == "/v1/responses" and answer["object"] == "response", answer
        else:
            assert_openai_error(status, kind, answer)

    fuzz()
    total = sum(statuses.values())
    print(f"\nfuzzed {total} requests; answers by status: {dict(sorted(statuses.items()))}")
    assert total >= EXAMPLES * 0.8
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 0.5 * total
    status, _, answer = send(server, json.dumps(VALID).encode(), {"Content-Type": "application/json"})
    assert status == 200 and answer["output"][-1]["content"][0]["text"] == "2 + 2 = 4."


PROPERTY = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["number", "integer", "array", "string", "object"]) | JSON,
        "items": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["number", "integer"]) | JSON}) | JSON,
        "description": JSON,
    },
)
SCHEMA = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("object") | JSON,
        "properties": st.dictionaries(st.sampled_from(["a", "b", "values", "x"]), PROPERTY | JSON, max_size=3) | JSON,
        "required": st.lists(st.sampled_from(["a", "b", "values"]) | JSON, max_size=3) | JSON,
        "additionalProperties": JSON,
    },
)
FUNCTION_TOOL = st.fixed_dictionaries(
    {"type": st.just("function"), "name": st.sampled_from(["sum_numbers", "multiply", "helper", "divide_numbers"])},
    optional={"parameters": SCHEMA | JSON, "description": st.sampled_from(["Add two numbers.", "x"]) | JSON},
)
TOOL_PROMPTS = st.sampled_from(
    [
        "What is 2 + 3?",
        "[duration=1] What is 2 + 3 * 4?",
        "[mistake=bad_json] Add 1, 2 and 3",
        "[mistake=wrong_types] What is 6 / 3?",
        "[loop] What is 1 + 1?",
        "[duration=2] Hello",
    ]
)


@settings(max_examples=300, deadline=None, database=None)
@given(tools=st.lists(FUNCTION_TOOL | TOOL | JSON, max_size=4), prompt=TOOL_PROMPTS, parallel=st.booleans())
def test_any_tools_field_gets_a_200_or_a_4xx_never_a_500(
    server: OfflineServer, tools: list[Any], prompt: str, parallel: bool
) -> None:
    body = {**VALID, "input": prompt, "tools": tools, "parallel_tool_calls": parallel}
    status, kind, answer = send(server, json.dumps(body).encode(), {"Content-Type": "application/json"})
    if status == 200:
        assert answer["object"] == "response", answer
    else:
        assert_openai_error(status, kind, answer)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_that_does_not_decompress_is_a_400(server: OfflineServer, encoding: str) -> None:
    status, kind, answer = send(server, b"this is not compressed", {"Content-Encoding": encoding})
    print(f"\nContent-Encoding: {encoding} with a plain body: {status} {answer}")
    assert_openai_error(status, kind, answer)


def test_an_unknown_expect_header_is_a_417_in_openai_shape(server: OfflineServer) -> None:
    status, kind, answer = send(server, json.dumps(VALID).encode(), {"Expect": "0"})
    print(f"\nExpect: 0 → {status} {kind} {answer!r}")
    assert status == 417 and answer["error"]["code"] == "expectation_failed"
    assert_openai_error(status, kind, answer)


def test_expect_100_continue_works(server: OfflineServer) -> None:
    status, _, answer = send(server, json.dumps(VALID).encode(), {"Expect": "100-continue"})
    print(f"\nExpect: 100-continue → {status}")
    assert status == 200 and answer["object"] == "response"


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 12\r\nTransfer-Encoding: chunked",  # both framings at once
        b"Content-Length: twelve",
        b"Content-Length: -1",
        b"Content-Encoding: br",  # an encoding the server cannot decode
        b"Transfer-Encoding: chunked\r\n\r\nzz",  # a chunk size that is not hex
    ],
)
def test_broken_http_framing_is_a_4xx_never_a_5xx(server: OfflineServer, head: bytes) -> None:
    """These never reach the app: aiohttp's parser answers them itself (in plain text, not OpenAI's shape)."""
    status_line = raw_exchange(server, b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n{}")
    print(f"\n{head.decode().splitlines()[0]!r}: {status_line}")
    assert re.match(r"HTTP/1\.[01] 4\d\d ", status_line), status_line
    assert send(server, json.dumps(VALID).encode(), {})[0] == 200


def raw_exchange(server: OfflineServer, request: bytes) -> str:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(65536).decode(errors="replace").split("\r\n", 1)[0]


def test_too_large_a_body_is_refused_before_it_is_read(server: OfflineServer) -> None:
    """A Content-Length of 1 GB, then only one byte of body: the 413 comes back at once, without the rest."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        started = time.perf_counter()
        conn.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        elapsed = time.perf_counter() - started
    head, _, body = reply.decode().partition("\r\n\r\n")
    print(f"\nContent-Length 1 GB with a 1-byte body: {head.splitlines()[0]!r} after {elapsed * 1000:.0f} ms")
    assert head.startswith("HTTP/1.1 413")
    assert_openai_error(413, "application/json", json.loads(body))
    assert json.loads(body)["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("chunked", [False, True], ids=["with Content-Length", "chunked, no Content-Length"])
def test_a_real_body_over_the_limit_is_a_413_in_openai_shape(server: OfflineServer, chunked: bool) -> None:
    big = json.dumps({**VALID, "instructions": "x" * (2 * LIMIT)}).encode()

    async def chunks() -> Any:
        for start_at in range(0, len(big), 4096):
            yield big[start_at : start_at + 4096]

    async def go() -> tuple[int, str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.base_url + "/responses",
                data=chunks() if chunked else big,
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            return response.status, response.headers.get("Content-Type", ""), await response.json(content_type=None)

    status, kind, answer = asyncio.run(go())
    print(
        f"\n{len(big)} bytes ({'chunked' if chunked else 'Content-Length'}), limit {LIMIT}: {status} "
        f"{answer['error']['code']}"
    )
    assert status == 413
    assert_openai_error(status, kind, answer)
    assert send(server, json.dumps(VALID).encode(), {})[0] == 200
