"""The Responses API of the offline server, without HTTP: one request body in, one Response out.

1. ``check_request`` checks a ``POST /v1/responses`` body the way the real API does, with a message that says
   what to fix: every value is checked for its type before it is used, and every mistake is a ``RequestError``
   (a 4xx, never a 500), which carries OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}``.
2. ``answer_checked`` asks the scripted model (``model.py``) for the next turn, says how long a model would
   think (``config.py``: the ``[duration=…]`` marker spread over the conversation's turns), and builds the
   Response exactly in the real API's shape (shared/responses-api.md). ``key`` names the request (the server
   uses a hash of the raw body): the same key gives the same ids and the same jitter, so a replay is identical.
3. ``sse`` tells that Response as the real API streams it (``stream: true``), over the same time::

       response.created, response.in_progress
       response.output_item.added / .done                  a reasoning item (the model "thinks" in between)
       response.output_item.added                          a message, or a function call, in_progress
       response.content_part.added                         (messages) an empty output_text part
       response.output_text.delta ...                      the text, a word at a time
       response.output_text.done / content_part.done
       response.function_call_arguments.delta ... / .done  (calls) the arguments, a few characters at a time
       response.output_item.done                           the finished item, exactly as in the final response
       response.completed                                  the same response as the non-streamed call

   Every event carries a ``sequence_number`` from 0. ``THINK_SHARE`` of the model's time passes before the
   first token, the rest is spread evenly over the deltas. ``[fault=drop]`` ends the stream halfway without a
   final event (the writer hangs up); ``[fault=failed]`` ends it halfway with ``response.failed``; a bug of
   ours after the stream started is an ``error`` event. A 429, a 500 or a hang come before any stream, as an
   HTTP status (``fault_error``), as the real API refuses a request, so that the client can retry.

The HTTP server (``app.py``), the in-process transport and the Batch API all answer through these functions.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from agentlab.bucket import input_tokens
from agentlab.offline.config import ServerConfig
from agentlab.offline.markers import Markers, parse_markers
from agentlab.offline.model import ModelTurn, planned_turns, respond, user_text

__all__ = ["RequestError", "CheckedRequest", "Answer", "parse_body", "check_request", "answer_checked", "answer"]
__all__ += ["fault_error", "sse", "plan_events", "pauses", "STREAM_FAULTS", "THINK_SHARE"]

MESSAGE_ROLES = {"user", "system", "developer", "assistant"}
ITEM_TYPES = {"message", "reasoning", "function_call", "function_call_output"}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("model", str, "a string such as 'gpt-5-mini'"),
    ("instructions", str, "a string"),
    ("parallel_tool_calls", bool, "true or false"),
    ("max_output_tokens", int, "an integer"),
    ("metadata", dict, "an object"),
    ("store", bool, "true or false"),
    ("reasoning", dict, 'an object such as {"effort": "low"}'),
    ("tools", list, "a list of tools"),
    ("temperature", (int, float), "a number"),
)
MAX_NESTING = 100  # levels of arrays and objects in a body: more is refused, whatever the interpreter could parse
THINK_SHARE = 0.4  # the share of the model's time that passes before its first token
STREAM_FAULTS = ("drop", "failed")  # the faults that happen inside a stream, halfway through
ARGUMENT_CHUNK = 6  # characters of a function call's arguments per delta
WORDS = re.compile(r"\S+\s*|\s+")  # a word and the spaces after it: the offline model's "token"

Event = dict[str, Any]


class RequestError(Exception):
    """An error answer: its status, OpenAI's body ``{"error": {"message", "type", "param", "code"}}``, headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The one place an OpenAI-shaped error body is written."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None, code: str = "invalid_type") -> RequestError:
    """The usual 400."""
    return RequestError(400, message, param=param, code=code)


# -- 1. Checking a request ---------------------------------------------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of the body, or a 400 that says what is wrong with it."""
    unreadable = "We could not parse the JSON body of your request"
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid("The request body is not valid UTF-8.", None, "invalid_body") from None
    except json.JSONDecodeError as exc:
        message = f'{unreadable} ({exc.msg}). Send a JSON object such as {{"model": "gpt-5-mini", "input": "Hi"}}.'
        raise invalid(message, None, "invalid_json") from None
    except RecursionError:  # nested thousands deep: how deep json can go differs between Python versions
        raise too_deep(unreadable) from None
    except ValueError:  # a number of thousands of digits
        raise invalid(f"{unreadable}: it holds a number too large to read.", None, "invalid_json") from None
    if nested_too_deeply(body):  # one limit of ours, the same on every Python
        raise too_deep(unreadable)
    if not isinstance(body, dict):
        raise invalid(f"The request body must be a JSON object, not {type(body).__name__}.", None, "invalid_json")
    return body


def too_deep(unreadable: str) -> RequestError:
    return invalid(f"{unreadable}: it is nested too deeply (over {MAX_NESTING} levels).", None, "invalid_json")


def nested_too_deeply(value: Any) -> bool:
    """More than ``MAX_NESTING`` levels of arrays and objects, found level by level (no recursion of ours)."""
    level = [value]
    for _ in range(MAX_NESTING):
        level = [v for c in level if isinstance(c, (dict, list)) for v in (c.values() if isinstance(c, dict) else c)]
        if not level:
            return False
    return any(isinstance(c, (dict, list)) for c in level)


def validate_request(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check the fields; return the input items (a string becomes one user message) and the tools."""
    for name in ("model", "input"):
        if body.get(name) is None:
            raise RequestError(
                400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
            )
    for name, kind, what in FIELD_TYPES:
        expect(body, name, kind, what)
    refuse_unsupported(body)
    check_values(body)
    raw_input = body["input"]
    if isinstance(raw_input, str):
        items: list[dict[str, Any]] = [{"role": "user", "content": raw_input}]
    elif isinstance(raw_input, list):
        items = [validate_item(item, i) for i, item in enumerate(raw_input)]
    else:
        raise invalid("Invalid type for 'input': expected a string or a list of items.", "input")
    tools = [validate_tool(tool, i) for i, tool in enumerate(body.get("tools") or [])]
    return items, tools


def expect(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise invalid(f"Invalid type for '{name}': expected {what}, got {type(value).__name__}.", name)


def refuse_unsupported(body: dict[str, Any]) -> None:
    """What the offline server cannot do: say so, and what to send instead."""
    check_stream(body)  # `stream` and `stream_options`: a 400 before any stream starts, never a broken stream
    if body.get("previous_response_id") is not None:
        message = (
            "The offline server keeps no state: send the whole conversation in `input` instead of previous_response_id."
        )
        raise invalid(message, "previous_response_id", "unsupported_parameter")


def check_stream(body: dict[str, Any]) -> None:
    stream, options = body.get("stream"), body.get("stream_options")
    if stream is not None and not isinstance(stream, bool):
        raise invalid(f"Invalid type for 'stream': expected true or false, got {type(stream).__name__}.", "stream")
    if options is None:
        return
    if not stream:
        raise invalid("'stream_options' is only allowed when 'stream' is true.", "stream_options", "invalid_value")
    if not isinstance(options, dict):
        raise invalid("Invalid type for 'stream_options': expected an object.", "stream_options")
    unknown = sorted(set(options) - {"include_obfuscation"})
    if unknown:
        param = f"stream_options.{unknown[0]}"
        raise invalid(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if not isinstance(options.get("include_obfuscation", True), bool):
        param = "stream_options.include_obfuscation"
        raise invalid(f"Invalid type for '{param}': expected true or false.", param)


def check_values(body: dict[str, Any]) -> None:
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in REASONING_EFFORTS):
        message = f"Invalid value for 'reasoning.effort': {effort!r}; use one of {list(REASONING_EFFORTS)}."
        raise invalid(message, "reasoning.effort", "invalid_value")
    metadata = body.get("metadata") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise invalid("Invalid 'metadata': its keys and values must be strings.", "metadata")


def validate_item(item: Any, index: int) -> dict[str, Any]:
    param = f"input[{index}]"
    if not isinstance(item, dict):
        raise invalid(f"Invalid '{param}': expected an object.", param)
    kind = item.get("type", "message")
    if not isinstance(kind, str) or kind not in ITEM_TYPES:  # a list or an object is not hashable: check first
        message = f"Invalid '{param}.type': {kind!r} is not supported offline (use one of {sorted(ITEM_TYPES)})."
        raise invalid(message, f"{param}.type", "invalid_value")
    if kind == "message":
        validate_message(item, param)
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                raise invalid(f"Missing or invalid '{param}.{name}': expected a string.", f"{param}.{name}")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), (str, list)):
            raise invalid(f"Invalid '{param}': a function_call_output needs a string call_id and output.", param)
    return item


def validate_message(item: dict[str, Any], param: str) -> None:
    if not isinstance(item.get("role"), str) or item["role"] not in MESSAGE_ROLES:
        message = f"Invalid '{param}.role': expected one of {sorted(MESSAGE_ROLES)}."
        raise invalid(message, f"{param}.role", "invalid_value")
    content = item.get("content")
    if not isinstance(content, str) and not (
        isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in content)
    ):
        raise invalid(f"Invalid '{param}.content': expected a string or a list of content parts.", f"{param}.content")


def validate_tool(tool: Any, index: int) -> dict[str, Any]:
    param = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise invalid(f"Invalid '{param}': expected an object.", param)
    if tool.get("type") != "function":
        message = (
            f"Unknown tool type {tool.get('type')!r} in '{param}': the offline server supports "
            'function tools only ({"type": "function", ...}).'
        )
        raise invalid(message, f"{param}.type", "invalid_value")
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise invalid(f"Missing required parameter: '{param}.name'.", f"{param}.name", "missing_required_parameter")
    if not isinstance(tool.get("parameters", {}), dict):
        raise invalid(f"Invalid '{param}.parameters': expected a JSON schema object.", f"{param}.parameters")
    validate_schema(tool.get("parameters", {}), f"{param}.parameters")
    return tool


def validate_schema(schema: dict[str, Any], param: str) -> None:
    """The parts of a parameters schema that the model reads must have the types JSON Schema gives them."""
    properties, required = schema.get("properties", {}), schema.get("required", [])
    if not isinstance(properties, dict) or not all(isinstance(p, dict) for p in properties.values()):
        raise invalid(f"Invalid '{param}.properties': expected an object of JSON schemas.", f"{param}.properties")
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise invalid(f"Invalid '{param}.required': expected a list of property names.", f"{param}.required")
    for name, prop in [("", schema), *((f".properties.{n}", p) for n, p in properties.items())]:
        kind, items = prop.get("type", "object"), prop.get("items", {})
        if not (isinstance(kind, str) or (isinstance(kind, list) and all(isinstance(k, str) for k in kind))):
            raise invalid(
                f"Invalid '{param}{name}.type': expected a type name such as 'number'.", f"{param}{name}.type"
            )
        if not isinstance(items, (dict, bool)):
            raise invalid(f"Invalid '{param}{name}.items': expected a JSON schema.", f"{param}{name}.items")


def check_call_ids(items: list[dict[str, Any]]) -> None:
    """Every output must answer an earlier call, and every call must have its output (as the real API checks)."""
    open_calls: dict[str, int] = {}
    for item in items:
        if item.get("type") == "function_call":
            open_calls[item["call_id"]] = 1
        elif item.get("type") == "function_call_output":
            if item["call_id"] not in open_calls:
                message = f"No tool call found for function call output with call_id {item['call_id']}."
                raise invalid(message, "input", "invalid_value")
            open_calls[item["call_id"]] = 0
    unanswered = [call_id for call_id, waiting in open_calls.items() if waiting]
    if unanswered:
        raise invalid(f"No tool output found for function call {unanswered[0]}.", "input", "invalid_value")


# -- 2. The answer -----------------------------------------------------------------------------------------------------


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
    input_tokens: int  # counted once (bucket.input_tokens): the rate limit spends it, the usage reports it


def answer(body: dict[str, Any], config: ServerConfig, key: str) -> Answer:
    """Validate a /v1/responses request body and produce the scripted model's Response. Raises RequestError."""
    return answer_checked(check_request(body, config), config, key)


def check_request(body: dict[str, Any], config: ServerConfig) -> CheckedRequest:
    """Validate ``body`` (RequestError when it is bad) and read its prompt and markers."""
    items, tools = validate_request(body)
    check_call_ids(items)
    prompt = user_text(items)
    markers = parse_markers(prompt) if config.markers else Markers()
    return CheckedRequest(body, items, tools, prompt, markers, input_tokens(body))


def answer_checked(request: CheckedRequest, config: ServerConfig, key: str) -> Answer:
    """The model's next turn as a Response, and how long to think before sending it."""
    parallel = request.body.get("parallel_tool_calls", True)
    turn = respond(request.items, request.tools, parallel, markers=config.markers)
    forced = None
    if request.markers.duration is not None:
        turns = planned_turns(request.prompt, request.tools, parallel, markers=config.markers)
        forced = request.markers.duration / turns
    delay = config.latency.delay(key, turn.output_tokens, forced)
    return Answer(build_response(request, turn, key), delay)


async def fault_error(fault: str, config: ServerConfig) -> RequestError:
    """The error answer of an injected fault, after a hang's wait (until the client gives up and disconnects)."""
    if fault == "hang":
        await asyncio.sleep(config.faults.hang_seconds)
    if fault == "429":
        wait = config.faults.retry_after * config.latency.time_scale
        return RequestError(
            429,
            f"Rate limit reached for requests on the offline server (injected fault). Please try again in "
            f"{wait:.2f} s.",
            kind="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(max(1, round(wait))), "retry-after-ms": str(round(wait * 1000))},
        )
    return RequestError(500, "The offline server failed on purpose (fault injection).", kind="server_error")


def build_response(request: CheckedRequest, turn: ModelTurn, key: str) -> dict[str, Any]:
    """A Response exactly in the shape of the real API (see shared/responses-api.md §2 and §4)."""
    body = request.body
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
        "tools": request.tools,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage(request.input_tokens, turn.output_tokens),
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


# -- 3. The answer as Server-Sent Events -------------------------------------------------------------------------------


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


def wants_obfuscation(body: dict[str, Any]) -> bool:
    """``stream_options.include_obfuscation`` of a checked request (see ``stream_problem``); true by default."""
    return bool((body.get("stream_options") or {}).get("include_obfuscation", True))


def frame(event: Event, sequence: int) -> bytes:
    """One event as Server-Sent Events put it on the wire: ``event: <type>``, ``data: <json>``, a blank line."""
    data = json.dumps({**event, "sequence_number": sequence}, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


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
