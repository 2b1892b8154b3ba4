"""Proxy mode forwards faithfully: what it does not change on purpose (the markers) reaches each side as it came.

A batch file without a final newline, a gzip-encoded body, a redirect, an upstream that breaks off mid-answer,
and an answer far larger than the proxy should ever hold: each one through the real proxy, against a stand-in
upstream on 127.0.0.1 (tests/proxy_support.py).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from proxy_support import (
    FAKE_KEY,
    HEADERS,
    Received,
    Served,
    client_of,
    markers_in,
    proxy_to,
    recorder,
    serving,
)

from agentlab.offline import start_process
from agentlab.offline.proxy import MASK, Scrubber

BIG = 256 * 1024 * 1024  # bytes of the large answer
PIECE = b"x" * (1024 * 1024)


async def test_a_batch_file_with_markers_and_no_final_newline_arrives_whole(upstream: Served, proxy: Served) -> None:
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-5-mini", "input": "1+1"}},
        {"custom_id": "b", "method": "POST", "url": "/v1/responses",
         "body": {"model": "gpt-5-mini", "input": "What is 2 + 3? [duration=5]"}},
    ]  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines)  # no newline at the end
    async with client_of(proxy) as client:
        uploaded = await client.files.create(file=("in.jsonl", text.encode()), purpose="batch")
        stored = (await client.files.content(uploaded.id)).content
    assert stored.split(b"\n")[0] == json.dumps(lines[0]).encode()  # untouched
    assert json.loads(stored.split(b"\n")[1])["body"]["input"] == "What is 2 + 3?"
    assert not stored.endswith(b"\n") and stored.count(b"\n") == 1 and uploaded.bytes == len(stored)


@pytest.mark.parametrize("prompt", ["What is 2 + 3?", "What is 2 + 3? [duration=0]"])
async def test_a_gzip_encoded_body_reaches_upstream_readable_and_labelled_as_it_is(
    upstream: Served, proxy: Served, prompt: str
) -> None:
    before = len(upstream.received)
    raw = json.dumps({"model": "gpt-5-mini", "input": prompt}).encode()
    async with aiohttp.ClientSession() as session:
        headers = {**HEADERS, "Content-Encoding": "gzip"}
        async with session.post(proxy.base_url + "/responses", data=gzip.compress(raw), headers=headers) as answer:
            status, body = answer.status, await answer.json()
    assert status == 200, body
    assert body["output"][-1]["content"][0]["text"] == "2 + 3 = 5."
    (sent,) = upstream.received[before:]
    encoding = {k.lower(): v for k, v in sent.headers.items()}.get("content-encoding", "identity")
    assert (gzip.decompress(sent.body) if encoding == "gzip" else sent.body) in (raw, json.dumps({
        "model": "gpt-5-mini", "input": "What is 2 + 3?"}).encode())  # fmt: skip
    assert markers_in([sent]) == []


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Served]:
    """Another host, which must never hear of the conversation."""
    received: list[Received] = []

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"stolen": True})

    app = web.Application(middlewares=[recorder(received)])
    app.router.add_route("*", "/{tail:.*}", answer)
    with serving(app, received) as served:
        yield served


@pytest.fixture(scope="module")
def odd_upstream(elsewhere: Served) -> Iterator[Served]:
    """An upstream that redirects, breaks off in the middle, or answers very large."""

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(elsewhere.base_url + "/responses")

    async def reset(request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        response = web.StreamResponse(headers={"Content-Type": kind.replace("-", "/")})
        await response.prepare(request)
        await response.write(b'event: response.created\ndata: {"type": "response.created"}\n\n' * 3)
        assert request.transport is not None
        request.transport.abort()  # the connection resets in the middle of the 200's body
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = BIG
        await response.prepare(request)
        for _ in range(BIG // len(PIECE)):
            await response.write(PIECE)
        return response

    async def echo(request: web.Request) -> web.StreamResponse:
        """A careless upstream that echoes the key, split across its writes, in a long answer."""
        key = request.headers["Authorization"].removeprefix("Bearer ").encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for cut in range(len(key) + 1):
            await response.write(b"x" * 1000 + key[:cut])
            await response.write(key[cut:] + b" " + key[:3])  # and a start of the key that goes nowhere
        return response

    app = web.Application()
    app.router.add_post("/echo/v1/responses", echo)
    app.router.add_post("/moved/v1/responses", moved)
    app.router.add_post("/reset/{kind}/v1/responses", reset)
    app.router.add_get("/big/v1/files/{file_id}/content", big)
    with serving(app) as served:
        yield served


async def test_a_redirect_is_passed_back_not_followed(odd_upstream: Served, elsewhere: Served) -> None:
    with proxy_to(odd_upstream.url + "/moved/v1") as proxy:
        async with aiohttp.ClientSession() as session:
            body = {"model": "gpt-5-mini", "input": "My secret plan"}
            async with session.post(
                proxy.base_url + "/responses", json=body, headers=HEADERS, allow_redirects=False
            ) as answer:
                status, location = answer.status, answer.headers.get("Location")
    assert elsewhere.received == []  # the conversation never left for the other host
    assert status == 307 and location == elsewhere.base_url + "/responses"


async def raw_exchange(url: str, path: str, body: bytes) -> bytes:
    """Everything the proxy sends back on one connection, until it closes it: heads, body and all."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += f"Authorization: Bearer {FAKE_KEY}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + body)
    try:
        return await asyncio.wait_for(reader.read(-1), timeout=10)
    finally:
        writer.close()


@pytest.mark.parametrize("kind", ["text-event-stream", "application-json"])
async def test_an_upstream_reset_mid_answer_ends_the_answer_as_a_broken_one(odd_upstream: Served, kind: str) -> None:
    with proxy_to(f"{odd_upstream.url}/reset/{kind}/v1") as proxy:
        body = json.dumps({"model": "gpt-5-mini", "input": "Hi", "stream": True}).encode()
        seen = await raw_exchange(proxy.url, "/v1/responses", body)
        async with aiohttp.ClientSession() as session:
            async with session.post(proxy.base_url + "/responses", data=body, headers=HEADERS) as answer:
                with pytest.raises(aiohttp.ClientPayloadError):
                    await answer.read()
    assert seen.count(b"HTTP/1.1 ") == 1 and seen.startswith(b"HTTP/1.1 200")  # one head: no error page inside
    assert b"response.created" in seen and not seen.endswith(b"\r\n0\r\n\r\n")  # no end-of-body chunk either


def peak_and_current_rss(pid: int) -> tuple[int, int]:
    """The highest and the present resident size of a process, in bytes (Linux: VmHWM and VmRSS)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the proxy's peak memory from /proc")
async def test_a_large_answer_streams_through_without_being_held(odd_upstream: Served) -> None:
    with start_process(time_scale=0.05, upstream=odd_upstream.url + "/big/v1") as proxy:
        assert proxy.pid is not None
        async with aiohttp.ClientSession() as session:
            await (await session.get(proxy.base_url + "/models", headers=HEADERS)).read()  # a warm proxy
            _, before = peak_and_current_rss(proxy.pid)
            received = 0
            async with session.get(proxy.base_url + "/files/file-big/content", headers=HEADERS) as answer:
                async for chunk in answer.content.iter_chunked(1024 * 1024):
                    received += len(chunk)
        peak, _ = peak_and_current_rss(proxy.pid)
    assert received == BIG
    assert peak - before < BIG / 8, f"the proxy grew by {(peak - before) / 2**20:.0f} MB for a {BIG // 2**20} MB answer"


async def test_a_key_echoed_across_chunks_never_comes_back(odd_upstream: Served) -> None:
    with proxy_to(odd_upstream.url + "/echo/v1") as proxy:
        async with aiohttp.ClientSession() as session:
            async with session.post(proxy.base_url + "/responses", data=b"{}", headers=HEADERS) as answer:
                body = await answer.read()
    assert FAKE_KEY.encode() not in body and body.count(b"sk-...redacted") == len(FAKE_KEY) + 1
    assert body.count(b"x" * 1000) == len(FAKE_KEY) + 1 and body.count(b" sk-") == len(FAKE_KEY) + 1


def test_the_scrubber_masks_a_key_cut_anywhere_between_two_chunks() -> None:
    key = FAKE_KEY.encode()
    for cut in range(len(key) + 1):
        scrubber = Scrubber(f"Bearer {FAKE_KEY}")
        body = scrubber.feed(b"a" + key[:cut]) + scrubber.feed(key[cut:] + b" sk-") + scrubber.rest()
        assert body == b"a" + MASK + b" sk-"
