"""Proxy mode in front of an upstream that behaves like the real API: its headers, its errors, its streams.

The upstream here is a small aiohttp app that answers what the real API answers (a 429 with its rate-limit
headers, a 401, an event stream), and the proxy must hand each back as it came, or say clearly what is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import aiohttp
import openai
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from proxy_support import FAKE_KEY, Served, agent_of, client_of, proxy_to, serving

from agentlab import BackendError
from agentlab.offline.config import config_from_env
from agentlab.offline.proxy import create_proxy_app

API_HEADERS = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "199000",
    "x-request-id": "req_test123",
    "openai-processing-ms": "321",
    "retry-after": "2",
    "retry-after-ms": "1500",
}


async def limited(request: web.Request) -> web.Response:
    """A 429 as the real API sends it, with its headers."""
    body = {
        "error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    return web.json_response(body, status=429, headers={**API_HEADERS, "x-should-retry": "false"})


async def refused(request: web.Request) -> web.Response:
    """A 401 that echoes (part of) the key, as a careless server might."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    body = {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error",
                      "param": None, "code": "invalid_api_key"}}  # fmt: skip
    return web.json_response(body, status=401)


async def streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "x-request-id": "req_stream"})
    await response.prepare(request)
    for n in range(3):
        await response.write(f'event: response.output_text.delta\ndata: {{"n": {n}}}\n\n'.encode())
        await asyncio.sleep(0.05)
    await response.write(b'event: response.completed\ndata: {"type": "response.completed"}\n\n')
    return response


@pytest.fixture(scope="module")
def api_like() -> Iterator[Served]:
    app = web.Application()
    app.router.add_post("/limited/v1/responses", limited)
    app.router.add_post("/refused/v1/responses", refused)
    app.router.add_post("/streamed/v1/responses", streamed)
    with serving(app) as served:
        yield served


async def test_upstream_status_body_and_client_headers_come_back_unchanged(api_like: Served) -> None:
    with proxy_to(api_like.url + "/limited/v1") as proxy:
        client = client_of(proxy)
        with pytest.raises(openai.RateLimitError) as caught:
            await client.responses.create(model="gpt-5-mini", input="Hi")
        await client.close()
    headers = caught.value.response.headers
    assert {name: headers.get(name) for name in API_HEADERS} == API_HEADERS
    assert caught.value.body == {"message": "Rate limit reached", "type": "requests", "param": None,
                                 "code": "rate_limit_exceeded"}  # fmt: skip


async def test_a_401_names_the_upstream_and_the_variable_never_the_key(
    api_like: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with proxy_to(api_like.url + "/refused/v1") as proxy:
        agent = agent_of(proxy)
        with pytest.raises(BackendError) as caught:
            await agent.run("What is 1 + 1?")
        await agent.client.close()  # type: ignore[union-attr]
    message = str(caught.value)
    assert caught.value.status_code == 401
    assert api_like.url + "/refused/v1" in message and "OPENAI_API_KEY" in message
    assert FAKE_KEY not in message + repr(caught.value) + caplog.text + repr(agent)


async def test_an_unreachable_upstream_is_a_clear_error_within_the_client_timeout() -> None:
    with serving(web.Application()) as closed:
        dead = closed.base_url  # a port that was just listening and is now closed
    with proxy_to(dead) as proxy:
        agent = agent_of(proxy, timeout=5.0)
        start = time.perf_counter()
        with pytest.raises(BackendError) as caught:
            await agent.run("What is 1 + 1?")
        await agent.client.close()  # type: ignore[union-attr]
    assert time.perf_counter() - start < 3 * 5.0
    assert dead in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)
    assert FAKE_KEY not in str(caught.value)


async def test_a_proxy_pointed_at_itself_says_so_at_once() -> None:
    with serving(web.Application()) as probe:
        port = probe.url.rsplit(":", 1)[1]
    # A proxy whose upstream is its own address: bind it to the port we just learnt, then point it there.
    looped_app = create_proxy_app(config_from_env(), f"http://127.0.0.1:{port}/v1")
    runner = web.AppRunner(looped_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(port)).start()
    try:
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=FAKE_KEY, timeout=5.0)
        start = time.perf_counter()
        with pytest.raises(openai.APIStatusError, match="OPENAI_BASE_URL") as caught:
            await client.responses.create(model="gpt-5-mini", input="Hi")
        await client.close()
    finally:
        await runner.cleanup()
    assert caught.value.status_code == 508 and time.perf_counter() - start < 2  # not retried, not a loop


async def test_event_streams_pass_through_as_they_come(api_like: Served) -> None:
    with proxy_to(api_like.url + "/streamed/v1") as proxy:
        async with aiohttp.ClientSession() as session:
            body = {"model": "gpt-5-mini", "input": "Hi", "stream": True}
            async with session.post(proxy.base_url + "/responses", json=body) as answer:
                assert answer.headers["Content-Type"].startswith("text/event-stream")
                assert answer.headers["x-request-id"] == "req_stream"
                arrivals = []
                async for chunk in answer.content.iter_any():
                    arrivals.append((time.perf_counter(), chunk))
    text = b"".join(chunk for _, chunk in arrivals).decode()
    assert text.count("response.output_text.delta") == 3 and text.rstrip().endswith('"response.completed"}')
    assert arrivals[-1][0] - arrivals[0][0] >= 0.1  # streamed, not buffered until the end
