"""Proxy mode of the offline server: the real Responses API behind it, the lesson markers still working.

With ``AGENTLAB_BACKEND=openai`` the client talks to this local proxy, and the proxy talks to the real API
(``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``). ``python -m agentlab serve --upstream URL`` runs it as a
process. For each ``POST /v1/responses`` it:

1. refuses a request that went round in a circle (``OPENAI_BASE_URL`` pointing at the proxy itself): each proxy
   adds its id to the ``x-agentlab-proxy`` header, and a request that comes back carrying it gets a 508;
2. reads the markers of the last user message, as the offline server does, and applies them itself:
   ``[fault=500|429|hang]`` (and ``xN``) answer at once, in the offline server's shapes, without calling the
   real API; ``[duration=X]`` holds the conversation's final answer until X s (× ``AGENTLAB_TIME_SCALE``) have
   passed since the conversation's first request arrived, which is what it means offline (the whole
   conversation takes X s). It never shortens real latency: it only ever waits longer;
3. removes every control marker from every string of the request (``without_markers``: input texts,
   instructions, function-call arguments and outputs, tool descriptions and schemas, keys too), so a real model
   never sees one: each known marker goes, with the spaces just before it, by the offline server's own grammar
   (``markers.strip_markers``, whatever Unicode spaces sit inside its brackets);
4. forwards the request with the learner's key, which arrives in the incoming ``Authorization`` header and
   leaves only in the outgoing one. The proxy never stores it, logs it or puts it in an answer;
5. answers upstream's status, headers and body (``x-ratelimit-*``, ``retry-after``, ``x-request-id``,
   ``openai-processing-ms``, …) as they come, the body streamed through, never held whole. A redirect is passed
   back, not followed (following it would send the conversation to another host). Two exceptions that say what
   to do: a 401 names the upstream URL and ``OPENAI_API_KEY``, and an upstream that cannot be reached is a 502
   naming both. An upstream that breaks off once its answer has begun breaks the answer off too: the client
   sees a broken body, never an error page inside a 200.

``[mistake=…]`` and ``[loop]`` need the scripted model: in proxy mode they are a 400 that says so (no lesson,
exercise or the demo uses them; they belong to the offline server's own tests). Every other path under ``/v1``
(``/v1/models``, files, batches, and whatever else carries a prompt) is forwarded as it is, but for one thing:
its body loses its markers too, as step 3 does, whether it is JSON, a multipart form or a batch file in one
(``body_without_markers``: each line a JSON document or text, its line ending kept; their faults and durations
do not apply: the Batch API answers on its own time). A body that holds no marker goes on byte for byte; one
that aiohttp decoded (``Content-Encoding: gzip``) goes on decoded, and labelled so. A ``text/event-stream``
answer is streamed through, only its ``response.completed`` waiting for a duration, and ``[fault=drop|failed]``
break a stream at its first delta. ``AGENTLAB_FAULT_RATE`` draws random faults here as it does offline.
``GET /offline/stats`` counts the proxy's own answers and injected faults.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from agentlab.offline.app import (
    STATE,
    State,
    count_requests,
    errors_as_json,
    get_stats,
    hang_up,
    read_attempt,
    read_body,
)
from agentlab.offline.config import ServerConfig
from agentlab.offline.markers import MarkerError, might_hold_markers, parse_markers, strip_markers
from agentlab.offline.model import user_text
from agentlab.offline.responses import STREAM_FAULTS, RequestError, failed_event, fault_error, frame, parse_body

__all__ = ["create_proxy_app", "DEFAULT_UPSTREAM", "PROXY_HEADER", "without_markers", "body_without_markers"]

DEFAULT_UPSTREAM = "https://api.openai.com/v1"  # the openai client's own default
PROXY_HEADER = "x-agentlab-proxy"
HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
NOT_FORWARDED = HOP_BY_HOP | {"content-length", "accept-encoding", PROXY_HEADER}
NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}
DECODED = {"gzip", "deflate", "br", "zstd"}  # the Content-Encodings aiohttp decodes as a request body arrives
ENCODED_PART = re.compile(rb"^content-transfer-encoding[ \t]*:[ \t]*(?!(?:7bit|8bit|binary)\s)", re.I | re.M)
COMPLETED = b"event: response.completed"
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=900, sock_connect=10)  # the client's own timeout cuts sooner
CHUNK = 64 * 1024  # bytes of an answer passed on at a time
WHOLE = 1024 * 1024  # an answer of at most this many bytes (its Content-Length) is passed on in one piece
MASK = b"sk-...redacted"


@dataclass(slots=True)
class Upstream:
    """Where the proxy forwards to, and the one HTTP session it does it with."""

    url: str
    proxy_id: str = field(default_factory=lambda: secrets.token_hex(6))
    session: aiohttp.ClientSession | None = None
    clock: ConversationClock = field(default_factory=lambda: ConversationClock())


UPSTREAM = web.AppKey("upstream", Upstream)


def create_proxy_app(config: ServerConfig, upstream: str | None = None) -> web.Application:
    """The proxy to ``upstream`` (else ``config.upstream``): the offline server's error shapes and counters."""
    url = (upstream or config.upstream or DEFAULT_UPSTREAM).rstrip("/")
    app = web.Application(middlewares=[count_requests, errors_as_json], client_max_size=config.max_body_bytes)
    app[STATE], app[UPSTREAM] = State(config), Upstream(url)
    app.cleanup_ctx.append(open_session)
    app.router.add_post("/v1/responses", proxy_response)
    app.router.add_get("/offline/stats", get_stats)
    app.router.add_route("*", "/v1/{tail:.*}", forward_other)
    return app


async def open_session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    jar = aiohttp.DummyCookieJar()  # cookies are the client's business: they pass through, the proxy keeps none
    async with aiohttp.ClientSession(connector=connector, timeout=UPSTREAM_TIMEOUT, cookie_jar=jar) as session:
        app[UPSTREAM].session = session
        yield
        app[UPSTREAM].session = None


async def proxy_response(request: web.Request) -> web.StreamResponse:
    """POST /v1/responses, read top to bottom."""
    arrived = time.monotonic()
    upstream = request.app[UPSTREAM]
    raw = await read_readable_body(request)
    refuse_loop(request, upstream)
    if not might_hold_markers(raw):  # the usual case: forward the bytes as they are
        return await forward(request, upstream, raw)
    return await apply_markers(request, raw, arrived)


async def apply_markers(request: web.Request, raw: bytes, arrived: float) -> web.StreamResponse:
    """Answer the faults, forward the rest without its markers, and hold a final answer for its duration."""
    config, stats, upstream = request.app[STATE].config, request.app[STATE].stats, request.app[UPSTREAM]
    body = parse_body(raw)
    markers = parse_markers(user_text(input_items(body.get("input"))))
    if markers.mistake or markers.loop:
        raise RequestError(
            400,
            "[mistake=...] and [loop] need the scripted model of the offline server; in proxy mode "
            "(AGENTLAB_BACKEND=openai) a real model answers. Remove the marker, or unset AGENTLAB_BACKEND.",
            code="offline_only_marker",
        )
    key = hashlib.blake2b(raw, digest_size=8).hexdigest()
    fault = config.faults.choose(key, read_attempt(request.headers.get("x-stainless-retry-count")), markers)
    if fault:
        stats.faults[fault] += 1
        if not (body.get("stream") and fault in STREAM_FAULTS):  # a stream's own faults happen inside it
            raise await fault_error(fault, config)
    deadline = None
    if markers.duration is not None:
        _, started = upstream.clock.start_of(body.get("input"), body.get("instructions"), arrived)
        deadline = started + markers.duration * config.latency.time_scale
    payload = json.dumps(without_markers(body)).encode()  # written anew: a key sent twice is sent once
    return await forward(request, upstream, payload, deadline, fault)


def refuse_loop(request: web.Request, upstream: Upstream) -> None:
    """A 508 for a request that this proxy forwarded before; the openai client does not retry it."""
    if upstream.proxy_id not in request.headers.get(PROXY_HEADER, "").split(","):
        return
    raise RequestError(
        508,
        f"The agentlab proxy forwards to {upstream.url}, and that is the proxy itself: the request came back to "
        "it. Point OPENAI_BASE_URL (or serve --upstream) at the real API, or unset OPENAI_BASE_URL for "
        f"{DEFAULT_UPSTREAM}.",
        code="proxy_loop",
        headers={"x-should-retry": "false"},
    )


async def forward_other(request: web.Request) -> web.StreamResponse:
    """Any other path under /v1 (models, files, batches, …): forwarded with its method, query and body, the body
    without its markers (a prompt can travel on many paths: chat, conversations, a batch file in a form)."""
    upstream = request.app[UPSTREAM]
    refuse_loop(request, upstream)
    payload = await read_readable_body(request) if request.can_read_body else None
    if payload and might_hold_markers(payload):
        payload = body_without_markers(payload)
    return await forward(request, upstream, payload)


async def read_readable_body(request: web.Request) -> bytes:
    """The body, which the proxy must be able to read to remove its markers: a 415 for one it cannot (a
    Content-Encoding that aiohttp does not decode, or a form part in base64 or quoted-printable)."""
    encoding = request.headers.get("Content-Encoding", "identity")
    if encoding.strip().lower() not in DECODED | {"identity", ""}:
        raise unreadable(f"Content-Encoding {encoding!r}", "Send it plain, or in one of " + ", ".join(sorted(DECODED)))
    raw = await read_body(request, request.app[STATE].config.read_timeout)
    if request.content_type.startswith("multipart/") and ENCODED_PART.search(raw):
        raise unreadable("a form part with a Content-Transfer-Encoding", "Send each part as it is (RFC 7578)")
    return raw


def unreadable(what: str, fix: str) -> RequestError:
    return RequestError(
        415,
        f"The agentlab proxy reads every request body to remove the lesson markers, and cannot read {what}. {fix}.",
        code="unsupported_encoding",
    )


async def forward(
    request: web.Request,
    upstream: Upstream,
    payload: bytes | None,
    deadline: float | None = None,
    fault: str | None = None,
) -> web.StreamResponse:
    """Send the request upstream; answer its status, headers and body, waiting for ``deadline`` if it is final."""
    assert upstream.session is not None, "the proxy's session opens with the app"
    url = upstream.url + request.path_qs.removeprefix("/v1")
    headers = forwarded_headers(request, upstream)
    try:
        async with upstream.session.request(
            request.method, url, data=payload, headers=headers, allow_redirects=False
        ) as answer:
            if answer.status == 401:
                raise refused_key(upstream.url, await answer.read())
            if answer.content_type == "text/event-stream":
                return await stream_through(request, answer, deadline, fault)
            if deadline is not None and answer.status == 200:
                return await hold_final_answer(request, answer, deadline)
            return await pass_through(request, answer)
    except (aiohttp.ClientError, TimeoutError) as exc:  # before the answer began: after, it breaks off instead
        raise unreachable(upstream.url, exc) from None


def forwarded_headers(request: web.Request, upstream: Upstream) -> CIMultiDict[str]:
    """The client's headers, but for the hop's own, with this proxy's id added; a body that aiohttp decoded
    (``Content-Encoding: gzip``) goes on decoded, so its label goes."""
    dropped = NOT_FORWARDED | (
        {"content-encoding"} if request.headers.get("Content-Encoding", "").lower() in DECODED else set()
    )
    headers = CIMultiDict((name, value) for name, value in request.headers.items() if name.lower() not in dropped)
    headers[PROXY_HEADER] = ",".join(filter(None, [request.headers.get(PROXY_HEADER), upstream.proxy_id]))
    return headers


def returned_headers(answer: aiohttp.ClientResponse) -> CIMultiDict[str]:
    return CIMultiDict((name, value) for name, value in answer.headers.items() if name.lower() not in NOT_RETURNED)


async def pass_through(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    """Upstream's answer, a chunk at a time, however large: the proxy never holds more than ``WHOLE`` bytes of
    it (an answer that says it is no longer goes on in one piece, as quickly as it can)."""
    scrubber = Scrubber(request.headers.get("Authorization", ""))
    if answer.content_length is not None and answer.content_length <= WHOLE:
        data = scrubber.whole(await answer.read())
        return web.Response(status=answer.status, body=data, headers=returned_headers(answer))
    response = web.StreamResponse(status=answer.status, headers=returned_headers(answer))
    await response.prepare(request)
    try:
        async for chunk in answer.content.iter_chunked(CHUNK):
            await response.write(scrubber.feed(chunk))
    except (aiohttp.ClientError, TimeoutError):  # upstream broke off: so does the answer
        return hang_up(request, response)
    await response.write(scrubber.rest())
    await response.write_eof()
    return response


async def hold_final_answer(request: web.Request, answer: aiohttp.ClientResponse, deadline: float) -> web.Response:
    """A Response to a request with ``[duration=X]``: one model turn, read whole to see whether it is final."""
    data = Scrubber(request.headers.get("Authorization", "")).whole(await answer.read())
    if b'"function_call"' not in data:
        await asyncio.sleep(deadline - time.monotonic())  # a final answer: the conversation lasts its duration
    return web.Response(status=answer.status, body=data, headers=returned_headers(answer))


async def stream_through(
    request: web.Request, answer: aiohttp.ClientResponse, deadline: float | None, fault: str | None
) -> web.StreamResponse:
    """Server-Sent Events, passed on as they come; a final answer's ``response.completed`` waits for ``deadline``.

    A stream fault (``[fault=drop]``, ``[fault=failed]``) breaks the stream at its first delta, as the offline
    server breaks its own halfway: the connection closes, or a ``response.failed`` event ends it. An upstream
    that breaks off breaks the stream off too.
    """
    response = web.StreamResponse(status=answer.status, headers=returned_headers(answer))
    await response.prepare(request)
    calls_seen, events = False, 0
    try:
        async for chunk in answer.content.iter_any():
            if fault and b".delta" in chunk:
                head = chunk[: max(0, chunk.rfind(b"event:", 0, chunk.index(b".delta")))]  # the events before it
                await response.write(head)
                return await break_stream(request, response, fault, events + head.count(b"event:"))
            calls_seen = calls_seen or b'"function_call"' in chunk
            if deadline is not None and not calls_seen and COMPLETED in chunk:
                at = chunk.index(COMPLETED)
                await response.write(chunk[:at])  # the text goes on at its own pace; only the end waits
                await asyncio.sleep(deadline - time.monotonic())
                chunk = chunk[at:]
            events += chunk.count(b"event:")
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError):
        return hang_up(request, response)
    await response.write_eof()
    return response


async def break_stream(request: web.Request, stream: web.StreamResponse, fault: str, events: int) -> web.StreamResponse:
    if fault == "drop":
        return hang_up(request, stream)
    failed = {"id": "resp_proxy", "object": "response", "created_at": int(time.time()), "model": "", "output": []}
    await stream.write(frame(failed_event(failed), events))
    await stream.write_eof()
    return stream


class Scrubber:
    """Upstream's answer without the learner's key in it, should upstream ever echo it (the real API masks it),
    a chunk at a time: the end of a chunk that could begin the key waits for the next chunk."""

    def __init__(self, authorization: str) -> None:
        key = authorization.removeprefix("Bearer ").strip().encode()
        self.key = key if len(key) >= 8 else b""
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self.key:
            return chunk
        data = (self.held + chunk).replace(self.key, MASK)
        cut = self.partial_key_at(data)
        self.held = data[cut:]
        return data[:cut]

    def partial_key_at(self, data: bytes) -> int:
        """Where the longest end of ``data`` that begins the key starts (``len(data)`` when none does)."""
        at = data.find(self.key[:1], max(0, len(data) - len(self.key) + 1))
        while at != -1 and not self.key.startswith(data[at:]):
            at = data.find(self.key[:1], at + 1)
        return len(data) if at == -1 else at

    def rest(self) -> bytes:
        held, self.held = self.held, b""
        return held

    def whole(self, data: bytes) -> bytes:
        return self.feed(data) + self.rest()


def refused_key(url: str, data: bytes) -> RequestError:
    try:
        code = json.loads(data)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "invalid_api_key"
    return RequestError(
        401,
        f"The API at {url} refused the key in OPENAI_API_KEY (401 {code}). Check that OPENAI_API_KEY holds a "
        "valid key for that API, and that OPENAI_BASE_URL (if set) is the API you mean.",
        code=str(code),
    )


def unreachable(url: str, exc: BaseException) -> RequestError:
    reason = type(exc).__name__ + (f": {exc}" if str(exc) else "")
    return RequestError(
        502,
        f"The agentlab proxy could not reach the API at {url} ({reason}). Check OPENAI_BASE_URL (unset it for "
        f"{DEFAULT_UPSTREAM}), your network, and that OPENAI_API_KEY is set for that API.",
        kind="server_error",
        code="upstream_unreachable",
    )


# -- Markers out of what goes upstream, and the clock of [duration=X] -----------------------------------------------


class ConversationClock:
    """When each conversation began, so that ``[duration=X]`` spans the conversation, as it does offline.

    A conversation is named by its opening messages (every request of it repeats them). A request that holds
    nothing but them is its first (or the retry of its first), and restarts its clock.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.started: OrderedDict[str, float] = OrderedDict()

    def start_of(self, raw_input: Any, instructions: Any, now: float) -> tuple[str, float]:
        items = input_items(raw_input)
        opening = [item for item in items if is_opening(item)]
        key = hashlib.blake2b(json.dumps([instructions, opening], default=str).encode(), digest_size=8).hexdigest()
        if len(opening) == len(items) or key not in self.started:
            self.started[key] = now
        self.started.move_to_end(key)
        while len(self.started) > self.limit:
            self.started.popitem(last=False)
        return key, self.started[key]


def input_items(raw_input: Any) -> list[Any]:
    """A request's input as a list of items, as it came (a string is one user message)."""
    if isinstance(raw_input, str):
        return [{"role": "user", "content": raw_input}]
    return list(raw_input) if isinstance(raw_input, list) else []


def is_opening(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") != "assistant"


def without_markers(value: Any) -> Any:
    """A copy of a JSON value with the markers removed from every string in it, keys too: whatever a request
    holds may reach the model (arguments, tool descriptions, schemas), so no place is special."""
    try:
        return strip_everywhere(value)
    except MarkerError as exc:
        raise RequestError(400, str(exc), code="nested_markers") from None


def strip_everywhere(value: Any) -> Any:
    if isinstance(value, str):
        return strip_markers(value) if "[" in value else value  # most strings hold no bracket: skip the scan
    if isinstance(value, list):
        return [strip_everywhere(item) for item in value]
    if isinstance(value, dict):
        return {strip_everywhere(name): strip_everywhere(item) for name, item in value.items()}
    return value


def body_without_markers(raw: bytes) -> bytes:
    """Any body without its markers: a JSON document as one, anything else (a multipart form, a batch file, text)
    a line at a time, and a line that holds none stays byte for byte. A JSON document or line that might hold
    one is written anew, even when it did not: a key given twice could hide one in the copy not read here."""
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return b"\n".join(line_without_markers(line) if might_hold_markers(line) else line for line in raw.split(b"\n"))
    return json.dumps(without_markers(document), ensure_ascii=False).encode() + raw[len(raw.rstrip()) :]


def line_without_markers(line: bytes) -> bytes:
    """One line of a form or a file: a JSON document (a batch request) or text, its ``\\r`` kept.

    A form is read a line at a time rather than part by part: whatever the parts' names, headers, quoting or
    boundary look-alikes, each line of a batch file is a line of the form, and no other byte changes.
    """
    text, cr = (line[:-1], b"\r") if line.endswith(b"\r") else (line, b"")
    try:
        document = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):  # text, or bytes that are not (kept as they are around the markers)
        try:
            return strip_markers(text.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape") + cr
        except MarkerError as exc:
            raise RequestError(400, str(exc), code="nested_markers") from None
    return json.dumps(without_markers(document), ensure_ascii=False).encode() + cr
