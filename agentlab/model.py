"""One model call, plain or streamed, with or without a budget: the one seam between the Agent and the model.

``call_model(client, request, stream=..., on_event=..., budget=...)`` sends one ``responses.create`` and gives
back the ``Response``. Three independent choices meet here, and nowhere else:

- **plain or streamed**: ``stream=True`` asks for Server-Sent Events; each piece of text reaches ``on_event``
  as an ``AgentEvent("text_delta", model, piece, time)`` while the model is still writing, and the call gives
  back the same ``Response`` as without streaming: the one that ``response.completed`` carries.
- **with or without a budget**: a budget wraps *any* model call, streamed or not. It reserves before the call,
  settles after it from ``usage`` and the ``x-ratelimit-*`` headers, and retries through itself (see
  ``agentlab.budget`` for its ``call(send, input_tokens)`` contract). Under a budget the openai client does not
  retry (``max_retries=0``): its retries would resend at once, outside the budget.
- **errors**: every failure of the client (a status, a refused connection, a time-out) becomes a
  ``BackendError`` through the one table in ``agentlab.errors``.

Why we read the stream's events ourselves instead of iterating the openai client's stream: the client turns
every event into a pydantic object, and tries to validate each one against the union of some sixty event types
first. The three events that carry a whole response (``created``, ``in_progress``, ``completed``) cost as much
as a whole non-streamed answer each, so a streamed turn cost about three times the CPU of a plain one (see the
benchmark's "streaming" section). Here only the text deltas are decoded, and only ``response.completed``
becomes a ``Response``, validated by openai's own model.

A stream can fail after it started, where no HTTP status can say so any more. Each way is a ``BackendError``
that says what happened, so that ``run_settled`` records it as ``Rejected`` and keeps the others: the connection
closes before ``response.completed`` (``[fault=drop]`` offline); ``response.failed`` or ``response.incomplete``
(the model stopped, and the response says why); an ``error`` event (the server says what went wrong).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import openai
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab.bucket import input_tokens
from agentlab.errors import BackendError, translate_error
from agentlab.records import AgentEvent, Span

__all__ = ["Answer", "RateBudget", "Send", "call_model", "read_events"]

# What one attempt of a model call gives back: the response, and the HTTP headers of its answer.
Answer = tuple[Response, Mapping[str, str]]
# One attempt of a model call; its argument is the attempt's number (0 first, then 1, 2 … for retries).
Send = Callable[[int], Awaitable[Answer]]


class RateBudget(Protocol):
    """Anything that paces model calls: ``agentlab.budget.Budget``, or the Dask ``SharedBudget``."""

    async def call(self, send: Send, input_tokens: int) -> Response: ...


STOPPED = ("response.failed", "response.incomplete")
SHORTEST_WAIT = 0.001  # seconds: a budget that let a call go in less is bookkeeping, not a wait worth a span
QUIET: WeakKeyDictionary[AsyncOpenAI, AsyncOpenAI] = WeakKeyDictionary()  # each client without its retries


async def call_model(
    client: AsyncOpenAI,
    request: dict[str, Any],
    *,
    stream: bool = False,
    on_event: Callable[[AgentEvent], None] | None = None,
    budget: RateBudget | None = None,
    spans: list[Span] | None = None,
) -> Response:
    """``client.responses.create(**request)``, plain or streamed, through the budget if there is one.

    With ``spans``, the call adds its spans there once it is answered (``call_spans``): a wait for the budget,
    each refused attempt and the wait after it, and the model's answer with its tokens.
    """
    started, sent = time.perf_counter(), []  # when each attempt went out
    try:
        if budget is None:
            response, _ = await send_once(client, request, stream, on_event)
        else:
            quiet = QUIET.get(client)
            if quiet is None:
                quiet = QUIET[client] = client.with_options(max_retries=0)

            def send(attempt: int) -> Awaitable[Answer]:  # a retry says so, as the openai client's retries do
                sent.append(time.perf_counter())
                headers = {**(request.get("extra_headers") or {}), "x-stainless-retry-count": str(attempt)}
                return send_once(quiet, {**request, "extra_headers": headers}, stream, on_event)

            response = await budget.call(send, input_tokens({**request, **(request.get("extra_body") or {})}))
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        raise translate_error(exc, client, budget_retries=None if budget is None else max(0, len(sent) - 1)) from exc
    if spans is not None:
        spans.extend(call_spans(str(request.get("model", "")), started, sent or [started], response))
    return response


def call_spans(model: str, started: float, sent: list[float], response: Response) -> list[Span]:
    """``wait "budget"`` until the first attempt went out, ``wait "retry"`` from each refused attempt to the next
    one, then ``model`` from the attempt that was answered to now, with the answer's tokens."""
    spans = [Span("wait", "budget", started, sent[0])] if sent[0] - started > SHORTEST_WAIT else []
    spans += [Span("wait", "retry", refused, retried) for refused, retried in zip(sent, sent[1:], strict=False)]
    usage = response.usage
    tokens = (usage.input_tokens, usage.output_tokens) if usage else (None, None)
    return [*spans, Span("model", model, sent[-1], time.perf_counter(), None, *tokens)]


async def send_once(
    client: AsyncOpenAI, request: dict[str, Any], stream: bool, on_event: Callable[[AgentEvent], None] | None
) -> Answer:
    """One attempt: the response and the headers it came with. Leaving a stream early closes its connection."""
    if not stream:
        raw = await client.responses.with_raw_response.create(**request)
        return raw.parse(), raw.headers
    async with client.responses.with_streaming_response.create(**request, stream=True) as answer:
        return await read_stream(answer.iter_lines(), str(request.get("model", "")), on_event), answer.headers


async def read_stream(lines: AsyncIterator[str], model: str, on_event: Callable[[AgentEvent], None] | None) -> Response:
    """The final ``Response`` of a stream, its text passed to ``on_event`` on the way."""
    seen = 0
    async for kind, data in read_events(lines):
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
