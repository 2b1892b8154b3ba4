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
3. removes every control marker from every input text and the instructions (``without_markers``), so a real
   model never sees one: each known marker goes, with the spaces just before it, by the offline server's own
   grammar (``markers.strip_markers``);
4. forwards the request with the learner's key, which arrives in the incoming ``Authorization`` header and
   leaves only in the outgoing one. The proxy never stores it, logs it or puts it in an answer;
5. answers upstream's status, body and headers (``x-ratelimit-*``, ``retry-after``, ``x-request-id``,
   ``openai-processing-ms``, …) unchanged. Two exceptions that say what to do: a 401 names the upstream URL and
   ``OPENAI_API_KEY``, and an upstream that cannot be reached is a 502 naming both.

``[mistake=…]`` and ``[loop]`` need the scripted model: in proxy mode they are a 400 that says so (no lesson,
exercise or the demo uses them; they belong to the offline server's own tests). Every other path under ``/v1``
(``/v1/models``, files, batches) is forwarded as it is, but for one thing: an uploaded batch file
(``POST /v1/files``) loses the markers of every request in it, as step 3 does (their faults and durations do not
apply: the Batch API answers on its own time). A ``text/event-stream`` answer is streamed through, only its
``response.completed`` waiting for a duration, and ``[fault=drop|failed]`` break a stream at its first delta.
``AGENTLAB_FAULT_RATE`` draws random faults here as it does offline. ``GET /offline/stats`` counts the proxy's
own answers and injected faults.
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
from email.message import EmailMessage
from typing import Any

import aiohttp
from aiohttp import web

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
from agentlab.offline.markers import KNOWN, parse_markers, strip_markers
from agentlab.offline.model import user_text
from agentlab.offline.responses import STREAM_FAULTS, RequestError, failed_event, fault_error, frame, parse_body

__all__ = ["create_proxy_app", "DEFAULT_UPSTREAM", "PROXY_HEADER", "without_markers", "might_hold_markers"]

DEFAULT_UPSTREAM = "https://api.openai.com/v1"  # the openai client's own default
PROXY_HEADER = "x-agentlab-proxy"
HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
NOT_FORWARDED = HOP_BY_HOP | {"content-length", "accept-encoding", PROXY_HEADER}
NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}
COMPLETED = b"event: response.completed"
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=900, sock_connect=10)  # the client's own timeout cuts sooner
SPACE = rb"(?:\s|\\[nrtf])*"  # a space, or one that JSON escapes
KEYS = "|".join(KNOWN).encode()
ANY_MARKER = re.compile(rb"\[" + SPACE + rb"(?:" + KEYS + rb")" + SPACE + rb"[=\]]", re.IGNORECASE)


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
    app.router.add_post("/v1/files", upload_file)
    app.router.add_route("*", "/v1/{tail:.*}", forward_as_is)
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
    raw = await read_body(request, request.app[STATE].config.read_timeout)
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
    return await forward(request, upstream, json.dumps(without_markers(body)).encode(), deadline, fault)


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


async def upload_file(request: web.Request) -> web.StreamResponse:
    """POST /v1/files: a batch file's requests lose their markers too, then the form goes on as it came."""
    upstream = request.app[UPSTREAM]
    refuse_loop(request, upstream)
    form = await read_body(request, request.app[STATE].config.read_timeout)
    if might_hold_markers(form):
        form = form_without_markers(form, request.headers.get("Content-Type", ""))
    return await forward(request, upstream, form)


async def forward_as_is(request: web.Request) -> web.StreamResponse:
    """Any other path under /v1 (models, files, batches): forwarded with its method, query and body."""
    upstream = request.app[UPSTREAM]
    refuse_loop(request, upstream)
    payload = await read_body(request, request.app[STATE].config.read_timeout) if request.can_read_body else None
    return await forward(request, upstream, payload)


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
    headers = {name: value for name, value in request.headers.items() if name.lower() not in NOT_FORWARDED}
    headers[PROXY_HEADER] = ",".join(filter(None, [request.headers.get(PROXY_HEADER), upstream.proxy_id]))
    try:
        async with upstream.session.request(request.method, url, data=payload, headers=headers) as answer:
            if answer.content_type == "text/event-stream":
                return await stream_through(request, answer, deadline, fault)
            data = await answer.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unreachable(upstream.url, exc) from None
    data = scrub(data, request.headers.get("Authorization", ""))
    if answer.status == 401:
        raise refused_key(upstream.url, data)
    if deadline is not None and answer.status == 200 and b'"function_call"' not in data:
        await asyncio.sleep(deadline - time.monotonic())  # a final answer: the conversation lasts its duration
    return web.Response(status=answer.status, body=data, headers=returned_headers(answer))


def returned_headers(answer: aiohttp.ClientResponse) -> dict[str, str]:
    return {name: value for name, value in answer.headers.items() if name.lower() not in NOT_RETURNED}


async def stream_through(
    request: web.Request, answer: aiohttp.ClientResponse, deadline: float | None, fault: str | None
) -> web.StreamResponse:
    """Server-Sent Events, passed on as they come; a final answer's ``response.completed`` waits for ``deadline``.

    A stream fault (``[fault=drop]``, ``[fault=failed]``) breaks the stream at its first delta, as the offline
    server breaks its own halfway: the connection closes, or a ``response.failed`` event ends it.
    """
    response = web.StreamResponse(status=answer.status, headers=returned_headers(answer))
    await response.prepare(request)
    calls_seen, events = False, 0
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
    await response.write_eof()
    return response


async def break_stream(request: web.Request, stream: web.StreamResponse, fault: str, events: int) -> web.StreamResponse:
    if fault == "drop":
        return hang_up(request, stream)
    failed = {"id": "resp_proxy", "object": "response", "created_at": int(time.time()), "model": "", "output": []}
    await stream.write(frame(failed_event(failed), events))
    await stream.write_eof()
    return stream


def scrub(data: bytes, authorization: str) -> bytes:
    """Upstream's answer without the key in it, should upstream ever echo it (the real API masks it)."""
    key = authorization.removeprefix("Bearer ").strip().encode()
    return data.replace(key, b"sk-...redacted") if len(key) >= 8 and key in data else data


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


def might_hold_markers(raw: bytes) -> bool:
    """False when ``raw`` surely holds no marker: the usual request, whose bytes go on untouched.

    A ``\\u`` escape could spell one, so it counts. (Two searches, not one pattern with ``|``: that defeats the
    regex engine's quick scan for ``[`` and takes four times as long.)
    """
    return ANY_MARKER.search(raw) is not None or b"\\u" in raw


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


def without_markers(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of the request with the markers removed from the instructions and from every input text."""
    clean = dict(body)
    if isinstance(body.get("instructions"), str):
        clean["instructions"] = strip_markers(body["instructions"])
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        clean["input"] = strip_markers(raw_input)
    elif isinstance(raw_input, list):
        clean["input"] = [clean_item(item) for item in raw_input]
    return clean


def clean_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    clean = dict(item)
    for name in ("content", "output"):
        value = item.get(name)
        if isinstance(value, str):
            clean[name] = strip_markers(value)
        elif isinstance(value, list):
            clean[name] = [clean_part(part) for part in value]
    return clean


def clean_part(part: Any) -> Any:
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return {**part, "text": strip_markers(part["text"])}
    return part


def form_without_markers(form: bytes, content_type: str) -> bytes:
    """A ``POST /v1/files`` form whose ``file`` part, a batch input file, lost the markers of its requests.

    The form is cut at its boundary by hand rather than read and rewritten with aiohttp's multipart classes:
    those would choose a new boundary and rewrite every part's headers, while this keeps every byte but the
    markers as the client sent it.
    """
    message = EmailMessage()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return form  # not a multipart form: upstream says what is wrong with it
    parts = form.split(b"--" + boundary.encode("latin-1"))
    for i, part in enumerate(parts):
        head, blank, data = part.partition(b"\r\n\r\n")
        if blank and b'name="file"' in head:
            parts[i] = head + blank + batch_file_without_markers(data)
    return (b"--" + boundary.encode("latin-1")).join(parts)


def batch_file_without_markers(data: bytes) -> bytes:
    """A batch input file (JSONL, each line's ``body`` a request to /v1/responses) without markers."""
    return b"\n".join(line_without_markers(line) if might_hold_markers(line) else line for line in data.split(b"\n"))


def line_without_markers(line: bytes) -> bytes:
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        return line  # not JSON: the Batch API says so, with its line number
    body = request.get("body") if isinstance(request, dict) else None
    if not isinstance(body, dict):
        return line
    return json.dumps({**request, "body": without_markers(body)}).encode()
