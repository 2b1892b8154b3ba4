"""What the proxy tests stand on: any aiohttp app served in a thread, and a stand-in for the real API.

The stand-in is the offline server itself (markers switched off where the server supports it: to it they are
plain text, as to a real model), with one more middleware that records every request it receives, so that a
test can say exactly what reached "the real API": which headers, which body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import streams, web
from openai import AsyncOpenAI

from agentlab import Agent
from agentlab.offline import LatencyModel, ServerConfig, create_app
from agentlab.offline.config import config_from_env
from agentlab.offline.markers import KNOWN, MARKER
from agentlab.offline.proxy import create_proxy_app
from agentlab.tools.math import MATH_TOOLS

FAKE_KEY = "sk-test-H7proxyFAKEkey0123456789abcdef"  # recognisable: a test scans for it everywhere
HEADERS = {"Authorization": f"Bearer {FAKE_KEY}", "Content-Type": "application/json"}  # a raw POST's


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Served:
    url: str
    received: list[Received] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@contextmanager
def serving(app: web.Application, received: list[Received] | None = None) -> Iterator[Served]:
    """Serve ``app`` on 127.0.0.1 in a daemon thread with its own loop, as ``offline.start`` does."""
    loop = asyncio.new_event_loop()
    bound: concurrent.futures.Future[int] = concurrent.futures.Future()
    stop = asyncio.Event()

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        bound.set_result(int(runner.addresses[0][1]))
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{bound.result(timeout=15)}", received if received is not None else [])
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


def recorder(received: list[Received]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def record(request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        body = await request.read()
        received.append(Received(request.method, request.path, dict(request.headers), body))
        return await handler(replayed(request, body))

    return record


def replayed(request: web.Request, body: bytes) -> web.Request:
    """The request again, its body readable once more: a multipart form is read from the stream, not the cache."""
    payload = streams.StreamReader(request.protocol, max(2**16, len(body)), loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    request._payload = payload  # type: ignore[attr-defined]
    return request


def stand_in_config(time_scale: float = 0.05) -> ServerConfig:
    """The offline server's settings with its markers off (when this version of the server can switch them off)."""
    config = ServerConfig(LatencyModel(time_scale=time_scale))
    if "markers" in {f.name for f in dataclasses.fields(ServerConfig)}:
        config = dataclasses.replace(config, markers=False)  # type: ignore[call-arg]
    return config


@contextmanager
def stand_in(time_scale: float = 0.05) -> Iterator[Served]:
    """A stand-in for the real API that records every request it receives."""
    received: list[Received] = []
    app = create_app(stand_in_config(time_scale))
    app.middlewares.append(recorder(received))
    with serving(app, received) as served:
        yield served


@contextmanager
def proxy_to(upstream: str) -> Iterator[Served]:
    """The proxy, in a thread of this process, forwarding to ``upstream``."""
    with serving(create_proxy_app(config_from_env(), upstream)) as served:
        yield served


async def get_json(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        result: dict[str, object] = await response.json()
        return result


def client_of(proxy: Served, *, retries: int = 2, timeout: float = 8.0) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=proxy.base_url, api_key=FAKE_KEY, max_retries=retries, timeout=timeout)


def agent_of(proxy: Served, **options: Any) -> Agent:
    return Agent(name="calculator", instructions="Use the tools.", tools=MATH_TOOLS, client=client_of(proxy, **options))


def markers_in(received: list[Received]) -> list[str]:
    """Every known control marker in what the upstream received: in a body, or in a header."""
    texts = [r.body.decode("utf-8", "replace") for r in received] + [str(r.headers) for r in received]
    return [m.group(0) for text in texts for m in MARKER.finditer(text) if m.group(1).lower() in KNOWN]


def assert_key_only_in_authorization(received: list[Received]) -> None:
    assert received, "the upstream received nothing: the test would prove nothing"
    for r in received:
        assert r.headers.get("Authorization") == f"Bearer {FAKE_KEY}", r.path
        others = {k: v for k, v in r.headers.items() if k.lower() != "authorization"}
        assert FAKE_KEY not in json.dumps(others) and FAKE_KEY.encode() not in r.body
