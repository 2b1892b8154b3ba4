"""Server-Sent Events for ``stream: true``: the same answer as the non-streamed call, told event by event.

The server first works out the whole answer (the ``Response`` JSON the non-streamed call returns) and the
time the model takes for it. This module then tells that answer as the real API streams it::

    event: response.created        the response, in_progress, with no output yet
    event: response.in_progress
    event: response.output_item.added / .done           a reasoning item (the model "thinks" in between)
    event: response.output_item.added                   a message, or a function call, in_progress
    event: response.content_part.added                  (messages) an empty output_text part
    event: response.output_text.delta  ...              the text, a word at a time
    event: response.output_text.done / content_part.done
    event: response.function_call_arguments.delta ...   (calls) the arguments, a few characters at a time
    event: response.function_call_arguments.done
    event: response.output_item.done                    the finished item, exactly as in the final response
    event: response.completed                           the same response as the non-streamed call

Every event carries a ``sequence_number`` that counts up from 0. The model's time is spread over the stream:
a share of it passes before the reasoning item is done (the time to first token), the rest is spread evenly
over the deltas, so text appears as it would from a real model and the whole stream takes as long as the
non-streamed answer.

Faults, as the real API shows them to a streaming client:

- ``drop``: the connection closes halfway through the stream, without a final event.
- ``failed``: halfway through, a ``response.failed`` event whose response carries the error (the model failed
  while it generated). The stream then ends.
- A bug of the server's own after the stream started (too late for a 500): an ``error`` event.

A 429, a 500 or a hang come before the stream starts, as an HTTP status (the server handles those): that is
what the real API does when it refuses a request, and it is what lets the client retry.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

__all__ = [
    "THINK_SHARE",
    "STREAM_FAULTS",
    "plan_events",
    "pauses",
    "write_stream",
    "send_events",
    "sse",
    "SSE_HEADERS",
    "stream_problem",
    "wants_obfuscation",
]

THINK_SHARE = 0.4  # the share of the model's time that passes before its first token
STREAM_FAULTS = ("drop", "failed")  # the faults that happen inside a stream, halfway through
ARGUMENT_CHUNK = 6  # characters of a function call's arguments per delta
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
WORDS = re.compile(r"\S+\s*|\s+")  # a word and the spaces after it: the offline model's "token"

Event = dict[str, Any]


def plan_events(response: dict[str, Any], *, obfuscate: bool = True) -> list[Event]:
    """Every event of the stream of ``response``, in order, without sequence numbers yet."""
    started = {**copy.deepcopy(response), "status": "in_progress", "output": [], "usage": None}
    events: list[Event] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    for index, item in enumerate(response["output"]):
        events += item_events(item, index, obfuscate)
    events.append({"type": "response.completed", "response": response})
    return events


def item_events(item: dict[str, Any], index: int, obfuscate: bool) -> list[Event]:
    """The events of one output item: added, its deltas if it has any, done."""
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "message":
        opened = {**item, "status": "in_progress", "content": []}
        middle = [event for at, part in enumerate(item["content"]) for event in text_events(part, at, where, obfuscate)]
    elif item["type"] == "function_call":
        opened = {**item, "status": "in_progress", "arguments": ""}
        middle = argument_events(item["arguments"], where, obfuscate)
    else:  # a reasoning item (its summary is empty offline), or any other item: added, then done
        opened, middle = item, []
    return [
        {"type": "response.output_item.added", "output_index": index, "item": opened},
        *middle,
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def text_events(part: dict[str, Any], at: int, where: dict[str, Any], obfuscate: bool) -> list[Event]:
    """One output_text part: an empty part added, its words as deltas, the full text done."""
    place = {**where, "content_index": at}
    text = part.get("text", "")
    deltas = [
        {"type": "response.output_text.delta", **place, "delta": word, "logprobs": [], **pad(word, obfuscate)}
        for word in WORDS.findall(text)
    ]
    return [
        {"type": "response.content_part.added", **place, "part": {**part, "text": ""}},
        *deltas,
        {"type": "response.output_text.done", **place, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **place, "part": part},
    ]


def argument_events(arguments: str, where: dict[str, Any], obfuscate: bool) -> list[Event]:
    """A function call's arguments: a few characters per delta, then the whole string."""
    chunks = [arguments[i : i + ARGUMENT_CHUNK] for i in range(0, len(arguments), ARGUMENT_CHUNK)]
    return [
        *({"type": "response.function_call_arguments.delta", **where, "delta": c, **pad(c, obfuscate)} for c in chunks),
        {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
    ]


def pad(delta: str, obfuscate: bool) -> dict[str, str]:
    """The real API pads each delta with an ``obfuscation`` string, so that sizes do not leak the text.

    ``stream_options: {"include_obfuscation": false}`` turns it off, as it does there.
    """
    if not obfuscate:
        return {}
    digest = hashlib.blake2b(delta.encode(), digest_size=8).hexdigest()
    return {"obfuscation": digest[: 16 - len(delta) % 16]}


def pauses(events: list[Event], delay: float) -> list[float]:
    """How long to wait before each event, so that the whole stream takes ``delay`` seconds.

    ``THINK_SHARE`` of it passes before the first reasoning item is done (or before the first delta, when
    there is none); the rest is spread evenly over the deltas. With no deltas, all of it is thinking.
    """
    waits = [0.0] * len(events)
    deltas = [i for i, event in enumerate(events) if event["type"].endswith(".delta")]
    thought = [i for i, event in enumerate(events) if is_reasoning_done(event)]
    think = delay * THINK_SHARE if deltas else delay
    waits[(thought or deltas or [len(events) - 1])[0]] += think
    for i in deltas:
        waits[i] += (delay - think) / len(deltas)
    return waits


def is_reasoning_done(event: Event) -> bool:
    return bool(event["type"] == "response.output_item.done" and event["item"]["type"] == "reasoning")


def stream_problem(body: dict[str, Any]) -> tuple[str, str, str] | None:
    """What is wrong with the streaming parameters, as ``(message, param, code)``; None when they are fine.

    The server answers a problem with a 400 before the stream starts, never with a broken stream.
    """
    stream, options = body.get("stream"), body.get("stream_options")
    if stream is not None and not isinstance(stream, bool):
        return (
            f"Invalid type for 'stream': expected true or false, got {type(stream).__name__}.",
            "stream",
            "invalid_type",
        )
    if options is None:
        return None
    if not stream:
        return "'stream_options' is only allowed when 'stream' is true.", "stream_options", "invalid_value"
    if not isinstance(options, dict):
        return "Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type"
    unknown = sorted(set(options) - {"include_obfuscation"})
    if unknown:
        return f"Unknown parameter: 'stream_options.{unknown[0]}'.", f"stream_options.{unknown[0]}", "unknown_parameter"
    if not isinstance(options.get("include_obfuscation", True), bool):
        return (
            "Invalid type for 'stream_options.include_obfuscation': expected true or false.",
            "stream_options.include_obfuscation",
            "invalid_type",
        )
    return None


async def sse(
    response: dict[str, Any], delay: float, *, fault: str | None = None, obfuscate: bool = True
) -> AsyncGenerator[bytes, None]:
    """``response`` as Server-Sent Events over ``delay`` seconds; ``fault`` breaks it halfway.

    It yields each batch of events as it falls due (everything due by now in one piece: one write, not one per
    event), and the HTTP server and the in-process transport write what it yields. A ``drop`` ends it without a
    final event; the writer then hangs up.
    """
    events = plan_events(response, obfuscate=obfuscate)
    waits = pauses(events, delay)
    halfway = len(events) // 2 if fault in STREAM_FAULTS else len(events)
    sequence, clock, pending = 0, asyncio.get_running_loop(), bytearray()
    due = clock.time()  # each event has its moment from the start: a busy server catches up, never drifts
    try:
        for sequence, (event, wait) in enumerate(zip(events[:halfway], waits[:halfway], strict=True)):
            due += wait
            if due > clock.time():  # this one is for later: send everything due by now, then wait
                if pending:
                    yield bytes(pending)
                    pending.clear()
                await asyncio.sleep(due - clock.time())
            pending += frame(event, sequence)
        if fault == "failed":
            pending += frame(failed_event(response), sequence + 1)
    except Exception as exc:  # a bug of ours after the stream started: too late for a 500, say it in the stream
        pending += frame(error_event(exc), sequence)  # in the place of the event that could not be sent
    if pending:
        yield bytes(pending)


async def write_stream(
    request: web.Request, response: dict[str, Any], delay: float, *, fault: str | None = None, obfuscate: bool = True
) -> web.StreamResponse:
    """Send ``response`` as Server-Sent Events over HTTP, over ``delay`` seconds."""
    events = sse(response, delay, fault=fault, obfuscate=obfuscate)
    return await send_events(request, events, drop=fault == "drop")


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


def wants_obfuscation(body: dict[str, Any]) -> bool:
    """``stream_options.include_obfuscation`` of a checked request (see ``stream_problem``); true by default."""
    return bool((body.get("stream_options") or {}).get("include_obfuscation", True))


def frame(event: Event, sequence: int) -> bytes:
    """One event as Server-Sent Events put it on the wire: ``event: <type>``, ``data: <json>``, a blank line."""
    data = json.dumps({**event, "sequence_number": sequence}, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def send(stream: web.StreamResponse, event: Event, sequence: int) -> None:
    await stream.write(frame(event, sequence))


def hang_up(request: web.Request, stream: web.StreamResponse) -> web.StreamResponse:
    """Close the connection in the middle of the body: the client sees an incomplete chunked read."""
    if request.transport is not None:
        request.transport.close()
    return stream


def failed_event(response: dict[str, Any]) -> Event:
    """``response.failed``: the response with status failed and the error, as the real API sends it."""
    error = {"code": "server_error", "message": "The model failed while it generated this response (injected fault)."}
    failed = {**response, "status": "failed", "error": error, "output": [], "usage": None}
    return {"type": "response.failed", "response": failed}


def error_event(exc: Exception) -> Event:
    """An ``error`` event. The fields are flat, as openai's ``ResponseErrorEvent`` reads them, and nested under
    ``error`` as the real API also sends them (that nested object is what makes the openai client raise)."""
    error = {
        "type": "server_error",
        "code": "server_error",
        "message": f"The offline server failed: {exc}",
        "param": None,
    }
    return {"type": "error", "code": error["code"], "message": error["message"], "param": None, "error": error}
