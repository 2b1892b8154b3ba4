"""The offline Responses API server: a real aiohttp app that the real ``openai`` client talks to.

- ``POST /v1/responses``: reads the body, injects a fault when asked to, lets ``answer.py`` validate it and
  ask the scripted math model for the next turn, waits as long as a model would think, and sends the Response.
- ``GET /v1/models`` and ``GET /v1/models/{id}``.
- ``GET /offline/stats``: counters (requests, statuses, in flight, disconnects, faults), for tests and lessons.

Two middlewares wrap every route: ``count_requests`` (outside) counts every request and every status the
client gets, whatever raised it; ``errors_as_json`` (inside) gives every error OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` with a message that says what to fix. Bad input gets a 4xx,
never a 500. The Authorization header is accepted whatever its value and is never logged. The server keeps no
state between requests: the client sends the whole conversation each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from agentlab.offline.answer import answer_checked, check_request
from agentlab.offline.batch_answer import add_batch_api
from agentlab.offline.latency import ServerConfig
from agentlab.offline.ratelimit import LIMITER, install_limiter
from agentlab.offline.streaming import STREAM_FAULTS, wants_obfuscation, write_stream
from agentlab.offline.tokens import input_tokens
from agentlab.offline.validation import RequestError, parse_body

__all__ = ["create_app", "create_response", "Stats", "CONFIG", "STATS", "error_response", "RequestError", "parse_body"]

MODELS = ("gpt-5-mini", "gpt-5", "gpt-5-nano", "gpt-4.1-mini")
UNCOUNTED = {"/offline/stats"}  # asking for the counters does not change them


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


CONFIG = web.AppKey("config", ServerConfig)
STATS = web.AppKey("stats", Stats)


def error_response(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """The one place that counts: requests, how many are in flight, every status sent, and disconnects."""
    if request.path in UNCOUNTED:
        response: web.StreamResponse = await handler(request)
        return response
    stats = request.app[STATS]
    stats.requests += 1
    stats.in_flight += 1
    stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        stats.disconnects += 1  # the client went away (or timed out) while we were "thinking"
        raise
    except web.HTTPException as exc:  # a redirect or other non-error that errors_as_json lets through
        stats.statuses[exc.status] += 1
        raise
    finally:
        stats.in_flight -= 1
    stats.statuses[response.status] += 1
    return response


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn every error into OpenAI's shape: ours, aiohttp's (404, 405, 413…), and unexpected ones (500)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except RequestError as exc:
        response = error_response(exc.status, exc.message, param=exc.param, code=exc.code)
        if exc.status == 408:  # the rest of the body may never come: do not wait for it
            response.force_close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        hints = {
            404: "Unknown path: the offline server has POST /v1/responses and GET /v1/models.",
            405: f"Method {request.method} is not allowed on {request.path}.",
        }
        return error_response(exc.status, hints.get(exc.status, exc.reason), code=exc.reason.lower().replace(" ", "_"))
    except Exception as exc:  # a bug of ours: say so, in the same shape
        return error_response(500, f"The offline server failed: {type(exc).__name__}: {exc}", kind="server_error")


async def create_response(request: web.Request) -> web.StreamResponse:
    """POST /v1/responses, read top to bottom."""
    config = request.app[CONFIG]
    # 1. Refuse a body that is too large (or an Expect we do not know) before reading it; parse and check it once.
    refuse_unknown_expect(request)
    if (request.content_length or 0) > config.max_body_bytes:
        message = f"The request body is larger than {config.max_body_bytes} bytes."
        raise RequestError(413, message, code="request_too_large")
    raw = await read_body(request, config.read_timeout)
    checked = check_request(parse_body(raw), config)

    # 1b. Spend the rate limit (serve --rpm/--tpm, ratelimit.py): a request and its input tokens, or a 429.
    limiter = request.app.get(LIMITER)
    refusal = limiter.admit(input_tokens(checked.body)) if limiter else None
    if refusal:
        return web.json_response(refusal.body(checked.body["model"]), status=429, headers=refusal.headers())

    # 2. Inject a fault if the prompt or the fault rate asks for one (the attempt is an HTTP header).
    key = hashlib.blake2b(raw, digest_size=8).hexdigest()
    attempt = read_attempt(request.headers.get("x-stainless-retry-count"))
    fault = config.faults.choose(key, attempt, checked.markers)
    streamed = bool(checked.body.get("stream"))
    if fault:
        request.app[STATS].faults[fault] += 1
    if fault and not (streamed and fault in STREAM_FAULTS):  # a stream's own faults happen inside it
        return await inject_fault(fault, config)

    # 3. Ask the model for the next turn, take the time a model would, and send the Response
    #    (streamed: the same Response, told as Server-Sent Events over the same time, see streaming.py).
    reply = answer_checked(checked, config, key)
    if limiter:
        limiter.settle(reply.body["usage"]["output_tokens"])  # the output tokens, now that they are known
    if streamed:
        return await write_stream(
            request, reply.body, reply.delay, fault=fault, obfuscate=wants_obfuscation(checked.body)
        )
    await asyncio.sleep(reply.delay)
    return web.Response(text=json.dumps(reply.body), content_type="application/json")


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


async def inject_fault(fault: str, config: ServerConfig) -> web.Response:
    if fault == "hang":
        await asyncio.sleep(config.faults.hang_seconds)  # until the client gives up and disconnects
    if fault == "429":
        wait = config.faults.retry_after * config.latency.time_scale
        return error_response(
            429,
            f"Rate limit reached for requests on the offline server (injected fault). Please try again in "
            f"{wait:.2f} s.",
            kind="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(max(1, round(wait))), "retry-after-ms": str(round(wait * 1000))},
        )
    return error_response(500, "The offline server failed on purpose (fault injection).", kind="server_error")


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [model_card(name) for name in MODELS]})


async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in MODELS:
        message = f"The model '{name}' does not exist offline; try one of {list(MODELS)}."
        raise RequestError(404, message, param="model", code="model_not_found")
    return web.json_response(model_card(name))


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1754000000, "owned_by": "agentlab-offline"}


async def get_stats(request: web.Request) -> web.Response:
    stats, limiter = request.app[STATS].as_json(), request.app.get(LIMITER)
    return web.json_response({**stats, "ratelimit": limiter.snapshot()} if limiter else stats)


def create_app(config: ServerConfig) -> web.Application:
    """The aiohttp application. aiohttp's own body limit backs up the early Content-Length check.

    A feature adds its routes here (``app.router.add_post(...)``), next to the ones below. With
    ``config.upstream`` set it is the proxy in front of a real API instead (``proxy.py``).
    """
    if config.upstream:
        from agentlab.offline.proxy import create_proxy_app  # proxy.py builds on this module

        return create_proxy_app(config)
    app = web.Application(middlewares=[count_requests, errors_as_json], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[STATS] = Stats()
    install_limiter(app, config.rpm, config.tpm, window=60 * config.latency.time_scale)
    app.router.add_post("/v1/responses", create_response, expect_handler=send_continue)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{name}", get_model)
    app.router.add_get("/offline/stats", get_stats)
    add_batch_api(app, config)  # /v1/files and /v1/batches (batch_answer.py)
    return app
