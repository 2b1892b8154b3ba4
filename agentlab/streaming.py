"""Streamed model calls: read the Server-Sent Events of one response, pass on its text as it comes.

An ``Agent(stream=True)`` asks for ``stream: true``. Each word of the answer then reaches ``on_event`` as an
``AgentEvent("text_delta", model, word, time)`` while the model is still writing, and the loop gets the same
``Response`` as without streaming: the one that ``response.completed`` carries. Nothing else changes.

Why we read the events ourselves instead of iterating the openai client's stream: the client turns every event
into a pydantic object, and tries to validate each one against the union of some sixty event types first. The
three events that carry a whole response (``created``, ``in_progress``, ``completed``) cost as much as a whole
non-streamed answer each, so a streamed turn cost about three times the CPU of a plain one (see the benchmark's
"streaming" section). Here only the text deltas are decoded, and only ``response.completed`` becomes a
``Response``, validated by openai's own model.

A stream can fail after it started, where no HTTP status can say so any more. Each way is a ``BackendError``
that says what happened, so that ``run_settled`` records it as ``Rejected`` and keeps the others:

- the connection closes before ``response.completed`` (``[fault=drop]`` offline);
- ``response.failed`` or ``response.incomplete``: the model stopped, and the response says why;
- an ``error`` event: the server says what went wrong.

Errors before the stream starts (a 429, a 500, a refused connection) are raised by the client as for a plain
call, after its own retries; the agent translates them as it does those.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab.errors import BackendError
from agentlab.records import AgentEvent

__all__ = ["stream_response", "read_events"]

STOPPED = ("response.failed", "response.incomplete")


async def stream_response(
    client: AsyncOpenAI, request: dict[str, Any], on_event: Callable[[AgentEvent], None] | None
) -> Response:
    """``client.responses.create(**request, stream=True)``, read to its end: the final ``Response``.

    Leaving early (an error, or a cancelled conversation) closes the connection, so the server frees it.
    """
    model, seen = str(request.get("model", "")), 0
    async with client.responses.with_streaming_response.create(**request, stream=True) as answer:
        async for kind, data in read_events(answer.iter_lines()):
            seen += 1
            if kind == "response.output_text.delta" and on_event is not None:
                on_event(AgentEvent("text_delta", model, json.loads(data)["delta"], time.perf_counter()))
            elif kind == "response.completed":
                return Response.model_validate(json.loads(data)["response"])
            elif kind in STOPPED:
                raise BackendError(explain_stopped(Response.model_validate(json.loads(data)["response"])))
            elif kind == "error":
                raise BackendError(f"the model server reported an error in the stream: {error_message(data)}")
    raise BackendError(f"the streamed response ended after {seen} events without response.completed")


async def read_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Server-Sent Events as ``(event name, data)`` pairs, the data not decoded yet.

    A connection that breaks in the middle becomes a ``BackendError`` here: whatever the HTTP library calls
    it (httpx's ``RemoteProtocolError``, aiohttp's ``ClientPayloadError``…), the stream ended too early.
    """
    kind, data, seen = "", [], 0
    try:
        async for line in lines:
            if line:
                field, _, value = line.partition(":")
                if field == "event":
                    kind = value.strip()
                elif field == "data":
                    data.append(value.removeprefix(" "))
                continue
            if kind or data:
                seen += 1
                yield kind, "\n".join(data)
            kind, data = "", []
    except openai.APIError:
        raise
    except Exception as exc:  # the transport's error, mid-stream: a time-out or a dropped connection
        raise broken_stream(exc, seen) from exc


def broken_stream(exc: Exception, seen: int) -> BackendError:
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return BackendError(
            f"the streamed response stalled after {seen} events (no event within the client's timeout); "
            "raise the client's timeout, or use run_bounded(timeout=...) to cut slow conversations."
        )
    return BackendError(
        f"the model server closed the connection in the middle of a streamed response, after {seen} events "
        "and before response.completed. Try the conversation again; run_settled keeps the other "
        "conversations' results."
    )


def error_message(data: str) -> str:
    """The message of an ``error`` event: flat (as openai's type reads it) or nested (as the real API sends it)."""
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        return data
    nested = event.get("error") if isinstance(event.get("error"), dict) else {}
    return str(event.get("message") or nested.get("message") or data)


def explain_stopped(response: Response) -> str:
    """Why a streamed response ended as failed or incomplete, from the response itself."""
    if response.error is not None:
        reason = f"{response.error.code}: {response.error.message}"
    elif response.incomplete_details is not None:
        reason = f"incomplete ({response.incomplete_details.reason})"
    else:
        reason = "no reason given"
    return (
        f"the model stopped in the middle of a streamed response ({response.status}, {reason}). "
        "Try again later; run_settled keeps the other conversations' results."
    )
