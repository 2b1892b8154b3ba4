"""Proxy mode: no control marker reaches the real API, however it is written and wherever in a request it sits.

The offline server's grammar (``markers.py``) says what a marker is; whatever it reads as one, the proxy
applies or removes: with any Unicode space inside the brackets, on any path, in any part of a form, in any
string of a JSON body (function-call arguments, tool descriptions, schemas), even one spelt by removing another.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any

import aiohttp
import pytest
from proxy_support import FAKE_KEY, HEADERS, Served, markers_in

from agentlab.offline.markers import parse_markers

SPACES = ["\u00a0", "\u2003", "\u3000", "\u2028", "\x85", "\u1680", " \n\t"]


async def post(url: str, raw: bytes, headers: dict[str, str] = HEADERS) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as answer:
        return answer.status, await answer.read()


def utf8(body: dict[str, Any]) -> bytes:
    """JSON with its text as UTF-8, not as ``\\u`` escapes (as many clients send it)."""
    return json.dumps(body, ensure_ascii=False).encode()


@pytest.mark.parametrize("space", SPACES)
async def test_a_unicode_space_inside_the_brackets_is_a_marker_in_proxy_mode_too(
    upstream: Served, proxy: Served, space: str
) -> None:
    fault, duration = f"[{space}fault{space}={space}500{space}]", f"[duration{space}={space}0]"
    assert parse_markers(fault).fault == "500" and parse_markers(duration).duration == 0  # the offline server's
    before = len(upstream.received)
    status, _ = await post(proxy.base_url + "/responses", utf8({"model": "gpt-5-mini", "input": f"1 + 1? {fault}"}))
    assert status == 500 and len(upstream.received) == before  # answered by the proxy, as offline
    status, _ = await post(proxy.base_url + "/responses", utf8({"model": "gpt-5-mini", "input": f"2 + 3? {duration}"}))
    assert status == 200 and markers_in(upstream.received[before:]) == []
    assert json.loads(upstream.received[-1].body)["input"] == "2 + 3?"


async def test_a_kelvin_sign_k_spells_mistake_as_the_offline_server_reads_it(proxy: Served) -> None:
    marker = "[mista\u212ae=bad_json]"
    assert parse_markers(marker).mistake == "bad_json"
    status, body = await post(proxy.base_url + "/responses", utf8({"model": "gpt-5-mini", "input": f"Hi {marker}"}))
    assert status == 400 and b"scripted model" in body


@pytest.mark.parametrize(
    "path",
    ["/responses/input_tokens", "/chat/completions", "/conversations", "/conversations/conv_1/items", "/embeddings"],
)
async def test_every_path_that_carries_a_prompt_loses_its_markers(upstream: Served, proxy: Served, path: str) -> None:
    before = len(upstream.received)
    body = {
        "model": "gpt-5-mini",
        "input": "What is 2 + 3? [duration=5]",
        "messages": [{"role": "user", "content": "Hi [fault=500]"}],
        "items": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[loop] Hi"}]}],
    }
    await post(proxy.base_url + path, utf8(body))
    sent = upstream.received[before:]
    assert [r.path for r in sent] == ["/v1" + path] and markers_in(sent) == []
    assert json.loads(sent[0].body)["messages"][0]["content"] == "Hi"


async def test_function_call_arguments_tool_descriptions_and_schemas_lose_their_markers(
    upstream: Served, proxy: Served
) -> None:
    before = len(upstream.received)
    body = {
        "model": "gpt-5-mini",
        "instructions": "Use the tools.",
        "input": [
            {"role": "user", "content": "What is 2 + 3?"},
            {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a": 2, "b": "3 [fault=500]"}'},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "5 [loop]"}]},
        ],
        "tools": [
            {
                "type": "function",
                "name": "add",
                "description": "Add two numbers. [duration=9]",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "number", "description": "[mistake=bad_json] first"}},
                    "[fault=429]": {"note": "a key is text too"},
                },
            }
        ],
        "text": {"format": {"type": "text"}},
        "metadata": {"note": "[ Duration = 3 ]"},
    }
    status, _ = await post(proxy.base_url + "/responses", utf8(body))
    (sent,) = upstream.received[before:]
    assert markers_in([sent]) == [], sent.body
    forwarded = json.loads(sent.body)
    assert forwarded["input"][1]["arguments"] == '{"a": 2, "b": "3"}'
    assert forwarded["tools"][0]["description"] == "Add two numbers."
    assert forwarded["input"][0]["content"] == "What is 2 + 3?" and status == 200


async def test_a_marker_spelt_by_removing_another_is_removed_too(upstream: Served, proxy: Served) -> None:
    before = len(upstream.received)
    await post(proxy.base_url + "/responses", utf8({"model": "gpt-5-mini", "input": "2 + 3? [[duration=1]fault=500]"}))
    sent = upstream.received[before:]
    assert markers_in(sent) == []


def forms(boundary: str) -> dict[str, str]:
    """One batch file in several valid multipart forms, each unusual in its own way."""
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/responses",
                       "body": {"model": "gpt-5-mini", "input": "What is 2 + 3? [duration=5]"}})  # fmt: skip
    data = f"{line}\r\n{line.replace('a', 'b', 1)} [not a marker] --{boundary}x\n"  # CRLF lines, a boundary lookalike
    file_ = f"Content-Type: application/jsonl\r\n\r\n{data}"
    disposition = "Content-Disposition: form-data"
    return {
        "unquoted name": f'--{boundary}\r\nContent-Disposition: form-data; name=file; filename="in.jsonl"\r\n{file_}',
        "lower-case header": f'--{boundary}\r\n{disposition.lower()}; name="file"; filename=in.jsonl\r\n{file_}',
        "name after filename": f'--{boundary}\r\nContent-Disposition: form-data; filename="f"; name="file"\r\n{file_}',
        "preamble": f'a preamble [fault=500]\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"\r\n{file_}',
    }


@pytest.mark.parametrize("kind", ["unquoted name", "lower-case header", "name after filename", "preamble"])
async def test_a_batch_file_in_an_unusual_form_loses_its_markers(upstream: Served, proxy: Served, kind: str) -> None:
    boundary = f"odd{uuid.uuid4().hex}"
    form = forms(boundary)[kind] + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch'
    form += f"\r\n--{boundary}--\r\n"
    headers = {"Authorization": f"Bearer {FAKE_KEY}", "Content-Type": f'multipart/form-data; boundary="{boundary}"'}
    before = len(upstream.received)
    status, body = await post(proxy.base_url + "/files", form.encode(), headers)
    assert status == 200, body
    sent = upstream.received[before:]
    assert markers_in(sent) == []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {FAKE_KEY}"}) as session:
        async with session.get(f"{proxy.base_url}/files/{json.loads(body)['id']}/content") as answer:
            stored = await answer.read()
    first, second, end = stored.split(b"\r\n")[0], stored.split(b"\r\n")[1], stored.split(b"\n")[-1]
    assert json.loads(first)["body"]["input"] == "What is 2 + 3?" and b"[not a marker]" in second and end == b""


@pytest.mark.parametrize("path", ["/responses", "/chat/completions"])
async def test_a_key_given_twice_cannot_hide_a_marker_in_the_copy_the_proxy_does_not_read(
    upstream: Served, proxy: Served, path: str
) -> None:
    before = len(upstream.received)
    raw = b'{"model": "gpt-5-mini", "input": "2 + 3? [\\u0066ault=500]", "input": "2 + 3?"}'
    status, _ = await post(proxy.base_url + path, raw)
    sent = upstream.received[before:]
    assert len(sent) == 1 and b"fault" not in sent[0].body and b"\\u0066" not in sent[0].body


async def test_a_body_the_proxy_cannot_read_is_refused_not_forwarded(upstream: Served, proxy: Served) -> None:
    before = len(upstream.received)
    hidden = gzip.compress(gzip.compress(utf8({"model": "gpt-5-mini", "input": "2 + 3? [fault=500]"})))
    for encoding in ("gzip, gzip", "x-gzip", "compress"):
        headers = {**HEADERS, "Content-Encoding": encoding}
        status, body = await post(proxy.base_url + "/responses", hidden, headers)
        assert status == 415 and encoding.encode() in body
    line = json.dumps({"custom_id": "a", "body": {"input": "[duration=5]"}}).encode()
    form = b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
    form += b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(line) + b"\r\n--b--\r\n"
    headers = {"Authorization": f"Bearer {FAKE_KEY}", "Content-Type": "multipart/form-data; boundary=b"}
    status, body = await post(proxy.base_url + "/files", form, headers)
    assert status == 415 and b"Content-Transfer-Encoding" in body
    assert len(upstream.received) == before
    plain = utf8({"model": "gpt-5-mini", "input": "2 + 3? [duration=0]"})
    for encoding in ("identity", ""):  # a plain body, said to be plain
        assert (await post(proxy.base_url + "/responses", plain, {**HEADERS, "Content-Encoding": encoding}))[0] == 200
