"""The offline server's app: its routes, served over HTTP by aiohttp (``create_app``) or in this process
(``transport()``), both through ``post_responses``, the one answer to ``POST /v1/responses``.

- ``POST /v1/responses``: reads the body, lets ``responses.py`` check it, spends the rate limit (``ratelimit.py``,
  when one is set), injects a fault when asked to, asks the scripted model for the next turn, waits as long as
  a model would think, and sends the Response (or its stream of events).
- ``GET /v1/models`` and ``GET /v1/models/{id}``; ``/v1/files`` and ``/v1/batches`` (``batches.py``).
- ``GET /offline/stats``: counters (requests, statuses, in flight, disconnects, faults), for tests and lessons.

Two middlewares wrap every route: ``count_requests`` (outside) counts every request and every status the
client gets, whatever raised it; ``errors_as_json`` (inside) writes every error in OpenAI's shape, ours
(``RequestError``), aiohttp's (404, 405, 413…) and unexpected ones (500): ``error_for`` is the one translation,
which the transport uses too. Error codes are constants of ours, never an ``http.HTTPStatus`` phrase (Python
3.13 renamed some). The Authorization header is accepted whatever its value and is never logged. The server
keeps no state between requests: the client sends the whole conversation each time.

A client's broken HTTP (a malformed chunked body, a bad header) is one line on stderr (``ONE_LINE_LOG``), not
aiohttp's traceback of 500 bytes a request: the mistake is the client's, and its 400 already says what it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sys
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from agentlab.offline.batches import add_batch_api
from agentlab.offline.config import ServerConfig, with_limits
from agentlab.offline.ratelimit import LIMITER, RateLimiter, install_limiter
from agentlab.offline.responses import (
    STREAM_FAULTS,
    RequestError,
    answer_checked,
    check_request,
    fault_error,
    parse_body,
    sse,
    wants_obfuscation,
)

__all__ = ["create_app", "transport", "Transport", "State", "STATE", "Stats", "Reply", "post_responses"]
__all__ += ["count_requests", "errors_as_json", "read_body", "read_attempt", "send_events", "hang_up", "ONE_LINE_LOG"]

MODELS = ("gpt-5-mini", "gpt-5", "gpt-5-nano", "gpt-4.1-mini")
UNCOUNTED = {"/offline/stats"}  # asking for the counters does not change them
ROUTES = {"/v1/responses", "/v1/models"}
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
# Our error codes, constants of ours (never http.HTTPStatus phrases, which Python 3.13 renamed).
ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


@dataclass(slots=True)
class Stats:
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    disconnects: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "disconnects": self.disconnects,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "faults": dict(self.faults),
        }


@dataclass(slots=True)
class State:
    """What one server keeps between requests: its settings, its counters and its rate limiter (if any)."""

    config: ServerConfig
    stats: Stats = field(default_factory=Stats)
    limiter: RateLimiter | None = None

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count a request in flight while it runs, and a disconnect if the client leaves (or times out)."""
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            yield
        except asyncio.CancelledError:
            stats.disconnects += 1
            raise
        finally:
            stats.in_flight -= 1

    def as_json(self) -> dict[str, Any]:
        """``GET /offline/stats``."""
        stats = self.stats.as_json()
        return {**stats, "ratelimit": self.limiter.snapshot()} if self.limiter else stats


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer before it meets a transport: a JSON body, or a stream of Server-Sent Events."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncGenerator[bytes, None] | None = None
    drop: bool = False  # [fault=drop]: hang up once the stream is out


STATE = web.AppKey("state", State)


def error_for(exc: Exception, method: str, path: str) -> RequestError:
    """Any error as the RequestError that answers it: ours as it is, a 404/405/413 of routing, a bug as a 500."""
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, web.HTTPException):
        return routing_error(exc.status, method, path)
    return RequestError(500, f"The offline server failed: {type(exc).__name__}: {exc}", kind="server_error")


def routing_error(status: int, method: str, path: str) -> RequestError:
    hints = {
        404: "Unknown path: the offline server has POST /v1/responses and GET /v1/models.",
        405: f"Method {method} is not allowed on {path}.",
        413: "The request body is too large.",
    }
    return RequestError(status, hints.get(status, f"HTTP {status}."), code=ERROR_CODES.get(status))


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """The one place that counts: requests, how many are in flight, every status sent, and disconnects."""
    if request.path in UNCOUNTED:
        response: web.StreamResponse = await handler(request)
        return response
    state = request.app[STATE]
    try:
        with state.counting():
            response = await handler(request)
    except web.HTTPException as exc:  # a redirect or other non-error that errors_as_json lets through
        state.stats.statuses[exc.status] += 1
        raise
    state.stats.statuses[response.status] += 1
    return response


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn every error into OpenAI's shape: ours, aiohttp's (404, 405, 413…), and unexpected ones (500)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = error_for(exc, request.method, request.path)
    except Exception as exc:
        error = error_for(exc, request.method, request.path)
    response = web.json_response(error.body(), status=error.status, headers=error.headers)
    if error.status == 408:  # the rest of the body may never come: do not wait for it
        response.force_close()
    return response


async def create_response(request: web.Request) -> web.StreamResponse:
    """POST /v1/responses over HTTP: refuse a body too large before reading it, then ``post_responses``."""
    state = request.app[STATE]
    refuse_unknown_expect(request)
    if (request.content_length or 0) > state.config.max_body_bytes:
        message = f"The request body is larger than {state.config.max_body_bytes} bytes."
        raise RequestError(413, message, code=ERROR_CODES[413])
    raw = await read_body(request, state.config.read_timeout)
    reply = await post_responses(raw, request.headers.get("x-stainless-retry-count"), state)
    if reply.stream is None:
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)
    return await send_events(request, reply.stream, drop=reply.drop)


async def post_responses(raw: bytes, retry_count: str | None, state: State) -> Reply:
    """POST /v1/responses, read top to bottom: what the HTTP route and the in-process transport both answer."""
    config, limiter = state.config, state.limiter
    # 1. Parse and check the body once (a RequestError when it is bad).
    checked = check_request(parse_body(raw), config)

    # 2. Spend the rate limit (serve --rpm/--tpm, ratelimit.py): a request and its input tokens, or a 429.
    refusal = limiter.admit(checked.input_tokens) if limiter else None
    if refusal:
        return Reply(429, refusal.body(checked.body["model"]), refusal.headers())

    # 3. Inject a fault if the prompt or the fault rate asks for one (the attempt is an HTTP header).
    key = hashlib.blake2b(raw, digest_size=8).hexdigest()
    fault = config.faults.choose(key, read_attempt(retry_count), checked.markers)
    streamed = bool(checked.body.get("stream"))
    if fault:
        state.stats.faults[fault] += 1
    if fault and not (streamed and fault in STREAM_FAULTS):  # a stream's own faults happen inside it
        raise await fault_error(fault, config)

    # 4. Ask the model for the next turn, take the time a model would, and send the Response
    #    (streamed: the same Response, told as Server-Sent Events over the same time, see responses.py).
    reply = answer_checked(checked, config, key)
    if limiter:
        limiter.settle(reply.body["usage"]["output_tokens"])  # the output tokens, now that they are known
    if streamed:
        events = sse(reply.body, reply.delay, fault=fault, obfuscate=wants_obfuscation(checked.body))
        return Reply(200, stream=events, drop=fault == "drop")
    await asyncio.sleep(reply.delay)
    return Reply(200, reply.body)


async def read_body(request: web.Request, timeout: float) -> bytes:
    """The whole body, within ``timeout`` seconds: a client that sends it slowly gets a 408 and is let go."""
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        message = f"The request body did not arrive within {timeout:g} s. Send it at once (and check the network)."
        raise RequestError(408, message, code="request_timeout") from None
    except (RequestPayloadError, HttpProcessingError) as exc:  # e.g. Content-Encoding: gzip on a plain body
        message = (
            f"The request body could not be read ({exc}). Send plain JSON, or a body that matches its Content-Encoding."
        )
        raise RequestError(400, message, code="invalid_body") from None


async def send_continue(request: web.Request) -> None:
    """Answer ``Expect: 100-continue`` with a 100 Continue; ``refuse_unknown_expect`` refuses any other value.

    aiohttp calls this before the middlewares, so it never refuses anything itself: a 417 from here would not be
    counted, nor have OpenAI's shape.
    """
    if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def refuse_unknown_expect(request: web.Request) -> None:
    expect = request.headers.get("Expect")
    if expect is not None and expect.lower() != "100-continue":
        message = f"Unsupported Expect header {expect!r}: send none, or 100-continue."
        raise RequestError(417, message, code="expectation_failed")


def read_attempt(header: str | None) -> int:
    try:
        return max(0, int(header or 0))
    except ValueError:
        return 0


def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [model_card(name) for name in MODELS]}


def get_model(name: str) -> dict[str, Any]:
    if name not in MODELS:
        message = f"The model '{name}' does not exist offline; try one of {list(MODELS)}."
        raise RequestError(404, message, param="model", code="model_not_found")
    return model_card(name)


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1754000000, "owned_by": "agentlab-offline"}


async def models_route(request: web.Request) -> web.Response:
    name = request.match_info.get("name")
    return web.json_response(list_models() if name is None else get_model(name))


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].as_json())


def create_app(config: ServerConfig) -> web.Application:
    """The aiohttp application. aiohttp's own body limit backs up the early Content-Length check.

    A feature adds its routes here (``app.router.add_post(...)``), next to the ones below. The proxy in front of
    a real API (``config.upstream``) is another app, ``proxy.create_proxy_app``; ``serve`` picks one.
    """
    app = web.Application(middlewares=[count_requests, errors_as_json], client_max_size=config.max_body_bytes)
    install_limiter(app, config.rpm, config.tpm, window=60 * config.latency.time_scale)
    app[STATE] = State(config, limiter=app.get(LIMITER))
    app.router.add_post("/v1/responses", create_response, expect_handler=send_continue)
    app.router.add_get("/v1/models", models_route)
    app.router.add_get("/v1/models/{name}", models_route)
    app.router.add_get("/offline/stats", get_stats)
    add_batch_api(app, config)  # /v1/files and /v1/batches (batches.py)
    return app


class Transport(httpx.AsyncBaseTransport):
    """The offline API in this process, for ``httpx.AsyncClient(transport=...)``: no socket, no thread.

    It answers ``POST /v1/responses`` (plain and streamed), ``GET /v1/models[/{id}]`` and ``GET /offline/stats``
    through ``answer``, as the HTTP server does, and honours the client's read timeout as a socket would
    (a ``[fault=hang]`` ends in ``httpx.ReadTimeout``). Why our own and not ``httpx.ASGITransport``: the server
    is aiohttp, not ASGI; this calls the same functions its routes call.
    """

    def __init__(self, state: State) -> None:
        self.state = state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path, state = request.url.path, self.state
        if path in UNCOUNTED:
            return httpx.Response(200, json=state.as_json())
        with state.counting():
            try:
                async with asyncio.timeout(read_timeout(request)):
                    reply = await self.route(request.method, path, await request.aread(), request.headers)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    "the offline model took longer than the read timeout", request=request
                ) from None
            except Exception as exc:
                error = error_for(exc, request.method, path)
                reply = Reply(error.status, error.body(), error.headers)
        if state.limiter and path == "/v1/responses":
            reply.headers.update(state.limiter.headers())
        state.stats.statuses[reply.status] += 1
        if reply.stream is None:
            return httpx.Response(reply.status, json=reply.body, headers=reply.headers)
        return httpx.Response(reply.status, headers=SSE_HEADERS, stream=EventStream(reply, read_timeout(request)))

    async def route(self, method: str, path: str, raw: bytes, headers: httpx.Headers) -> Reply:
        if path == "/v1/responses" and method == "POST":
            if len(raw) > self.state.config.max_body_bytes:
                message = f"The request body is larger than {self.state.config.max_body_bytes} bytes."
                raise RequestError(413, message, code=ERROR_CODES[413])
            return await post_responses(raw, headers.get("x-stainless-retry-count"), self.state)
        if path == "/v1/models" and method == "GET":
            return Reply(200, list_models())
        if path.startswith("/v1/models/") and method == "GET":
            return Reply(200, get_model(path.removeprefix("/v1/models/")))
        raise routing_error(405 if path in ROUTES else 404, method, path)


class EventStream(httpx.AsyncByteStream):
    """The Server-Sent Events of a Reply, as httpx reads a body; a dropped stream ends as a broken connection."""

    def __init__(self, reply: Reply, timeout: float | None) -> None:
        assert reply.stream is not None
        self.reply, self.events, self.timeout = reply, reply.stream, timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    chunk = await anext(self.events)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise httpx.ReadTimeout("the offline model stopped streaming") from None
            yield chunk
        if self.reply.drop:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    async def aclose(self) -> None:
        await self.events.aclose()


def read_timeout(request: httpx.Request) -> float | None:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return timeout.get("read")


def transport(config: ServerConfig | None = None, *, rpm: int | None = None, tpm: int | None = None) -> Transport:
    """The offline API as an ``httpx.AsyncBaseTransport``, with ``config`` (else the environment's settings)."""
    config = with_limits(config, rpm, tpm)
    window = 60 * config.latency.time_scale
    limiter = RateLimiter(config.rpm, config.tpm, window=window) if config.rpm or config.tpm else None
    return Transport(State(config, limiter=limiter))


async def send_events(request: web.Request, events: AsyncGenerator[bytes, None], *, drop: bool) -> web.StreamResponse:
    """Write what ``sse`` yields, as it comes; ``drop`` hangs up before the end.

    A client that hangs up cancels this handler (the server runs with ``handler_cancellation``), so a
    conversation whose reader has gone is freed at once, in the middle of a pause.
    """
    stream = web.StreamResponse(headers=SSE_HEADERS)
    await stream.prepare(request)
    try:
        async for chunk in events:
            await stream.write(chunk)
    except ConnectionError:  # the client went away between two events: nothing left to tell it
        return stream
    if drop:
        return hang_up(request, stream)
    await stream.write_eof()
    return stream


def hang_up(request: web.Request, stream: web.StreamResponse) -> web.StreamResponse:
    """Close the connection in the middle of the body: the client sees an incomplete chunked read."""
    if request.transport is not None:
        request.transport.close()
    return stream


class OneLine(logging.Formatter):
    """``agentlab offline server: Error handling request from 127.0.0.1: BadHttpMessage: 400, message: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            message += f": {type(error).__name__}: {error}"
        return "agentlab offline server: " + " ".join(message.split())[:300]


class ToStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now (a test may have swapped it since the server started)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed: nobody to tell
            pass


def one_line_log() -> logging.Logger:
    """A logger of its own (not registered with ``logging``): the application's log settings stay untouched."""
    log = logging.Logger("agentlab.offline.http", logging.INFO)
    handler = ToStderr()
    handler.setFormatter(OneLine())
    log.addHandler(handler)
    return log


ONE_LINE_LOG = one_line_log()
