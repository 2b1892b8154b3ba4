"""Streamed model calls: read the Server-Sent Events of one response, pass on its text as it comes.

An ``Agent(stream=True)`` asks for ``stream: true``. Each word of the answer then reaches ``on_event`` as an
``AgentEvent("text_delta", model, word, time)`` while the model is still writing, and the loop gets the same
``Response`` as without streaming: the one that ``response.completed`` carries. Nothing else changes.

A stream can fail after it started, where no HTTP status can say so any more. Each way is a ``BackendError``
that says what happened, so that ``run_settled`` records it as ``Rejected`` and keeps the others:

- the connection closes before ``response.completed`` (``[fault=drop]`` offline);
- ``response.failed`` or ``response.incomplete``: the model stopped, and the response says why;
- an ``error`` event, which the openai client raises as an ``APIError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

from agentlab.errors import BackendError
from agentlab.results import AgentEvent

__all__ = ["stream_response", "collect_stream"]


async def stream_response(
    client: AsyncOpenAI, request: dict[str, Any], on_event: Callable[[AgentEvent], None] | None
) -> Response:
    """``client.responses.create(**request, stream=True)``, read to its end: the final ``Response``.

    Errors before the stream starts (a 429, a 500, a refused connection) are raised by the client as for a
    plain call; the caller translates them.
    """
    stream = await client.responses.create(**request, stream=True)
    return await collect_stream(stream, str(request.get("model", "")), on_event)


async def collect_stream(
    stream: openai.AsyncStream[ResponseStreamEvent], model: str, on_event: Callable[[AgentEvent], None] | None
) -> Response:
    """Read events until ``response.completed``, passing on each text delta; close the stream in any case."""
    seen = 0
    try:
        async with stream:  # leaving early closes the connection, so the server frees the conversation
            async for event in stream:
                seen += 1
                if isinstance(event, ResponseTextDeltaEvent) and on_event is not None:
                    on_event(AgentEvent("text_delta", model, event.delta, time.perf_counter()))
                elif isinstance(event, ResponseCompletedEvent):
                    return event.response
                elif isinstance(event, (ResponseFailedEvent, ResponseIncompleteEvent)):
                    raise BackendError(explain_stopped(event.response))
                elif isinstance(event, ResponseErrorEvent):
                    raise BackendError(f"the model server reported an error in the stream: {event.message}")
    except openai.APITimeoutError as exc:
        raise BackendError(
            f"the streamed response stalled after {seen} events (no event within the client's timeout); "
            "raise the client's timeout, or use run_bounded(timeout=...) to cut slow conversations."
        ) from exc
    except openai.APIConnectionError as exc:
        raise BackendError(
            f"the model server closed the connection in the middle of a streamed response, after {seen} events "
            "and before response.completed. Try the conversation again; run_settled keeps the other "
            "conversations' results."
        ) from exc
    except openai.APIError as exc:  # an `error` event, which the client raises itself
        raise BackendError(f"the model server reported an error in the stream: {exc.message}") from exc
    raise BackendError(f"the streamed response ended after {seen} events without response.completed")


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
