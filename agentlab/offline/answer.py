"""One ``/v1/responses`` request body in, the scripted model's ``Response`` out: no HTTP in sight.

``answer(body, config, key)`` is the whole offline API minus the transport: it validates the body
(``validation.py``), asks the scripted model for the next turn (``model.py``), says how long a model would
think (``latency.py``, the ``[duration=…]`` marker spread over the conversation's turns), and builds the
Response exactly in the real API's shape. The HTTP handler sleeps for ``Answer.delay`` and sends
``Answer.body``; the Batch API answers each JSONL line with it; streaming spreads it over the delay as events.

``key`` names the request (the server uses a hash of the raw body): the same key gives the same ids and the
same jitter, so a replay is identical.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agentlab.offline.latency import ServerConfig
from agentlab.offline.markers import Markers, parse_markers
from agentlab.offline.model import ModelTurn, planned_turns, respond, user_text
from agentlab.offline.tokens import input_tokens
from agentlab.offline.validation import check_call_ids, validate_request

__all__ = ["Answer", "CheckedRequest", "answer", "check_request", "answer_checked", "build_response"]


@dataclass(frozen=True, slots=True)
class Answer:
    body: dict[str, Any]  # the Response JSON, exactly what POST /v1/responses returns with 200
    delay: float  # seconds the model 'thinks' before answering, already time-scaled


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request body that passed validation, with what the model and the fault plan read from it."""

    body: dict[str, Any]
    items: list[dict[str, Any]]  # the input as items (a string input becomes one user message)
    tools: list[dict[str, Any]]
    prompt: str  # the last user message
    markers: Markers  # its control markers (none when the server runs with markers=False)


def answer(body: dict[str, Any], config: ServerConfig, key: str) -> Answer:
    """Validate a /v1/responses request body and produce the scripted model's Response. Raises RequestError."""
    return answer_checked(check_request(body, config), config, key)


def check_request(body: dict[str, Any], config: ServerConfig) -> CheckedRequest:
    """Validate ``body`` (RequestError when it is bad) and read its prompt and markers."""
    items, tools = validate_request(body)
    check_call_ids(items)
    prompt = user_text(items)
    return CheckedRequest(body, items, tools, prompt, parse_markers(prompt) if config.markers else Markers())


def answer_checked(request: CheckedRequest, config: ServerConfig, key: str) -> Answer:
    """The model's next turn as a Response, and how long to think before sending it."""
    parallel = request.body.get("parallel_tool_calls", True)
    turn = respond(request.items, request.tools, parallel, markers=config.markers)
    forced = None
    if request.markers.duration is not None:
        turns = planned_turns(request.prompt, request.tools, parallel, markers=config.markers)
        forced = request.markers.duration / turns
    delay = config.latency.delay(key, turn.output_tokens, forced)
    return Answer(build_response(request.body, request.tools, turn, key), delay)


def build_response(body: dict[str, Any], tools: list[dict[str, Any]], turn: ModelTurn, key: str) -> dict[str, Any]:
    """A Response exactly in the shape of the real API (see shared/responses-api.md §2 and §4)."""
    reasoning = body.get("reasoning") or {}
    return {
        "id": f"resp_{key}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output_items(turn, key),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort", "medium"), "summary": None},
        "store": body.get("store", True),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": tools,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage(input_tokens(body), turn.output_tokens),
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def output_items(turn: ModelTurn, key: str) -> list[dict[str, Any]]:
    """A reasoning item, then the turn's function calls, or its message when it makes none."""
    output: list[dict[str, Any]] = [{"id": f"rs_{key}0", "type": "reasoning", "summary": []}]
    for i, call in enumerate(turn.calls, 1):
        output.append(
            {
                "id": f"fc_{key}{i}",
                "type": "function_call",
                "status": "completed",
                "call_id": f"call_{key}{i}",
                "name": call.name,
                "arguments": call.arguments,
            }
        )
    if not turn.calls:
        content = [{"type": "output_text", "text": turn.text, "annotations": []}]
        output.append(
            {"id": f"msg_{key}", "type": "message", "status": "completed", "role": "assistant", "content": content}
        )
    return output


def usage(input_count: int, output_count: int) -> dict[str, Any]:
    return {
        "input_tokens": input_count,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_count,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_count + output_count,
    }
