"""The offline Responses API server: a real aiohttp app that the real ``openai`` client talks to.

- ``POST /v1/responses``: validates the request the way the real API does, asks the scripted math model
  (``model.py``) for the next turn, waits as the latency model says, and answers a ``Response`` JSON.
- ``GET /v1/models`` and ``GET /v1/models/{id}``.
- ``GET /offline/stats``: counters (requests, statuses, in flight, disconnects, faults), for tests and lessons.

Every error has OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` and a message that says
what to fix. Bad input gets a 4xx, never a 500. The Authorization header is accepted whatever its value and is
never logged. The server keeps no state between requests: the client sends the whole conversation each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_urldispatcher import _default_expect_handler

from agentlab.offline import model
from agentlab.offline.latency import ServerConfig, parse_markers

__all__ = ["create_app", "Stats", "CONFIG", "STATS"]

MODELS = ("gpt-5-mini", "gpt-5", "gpt-5-nano", "gpt-4.1-mini")
MESSAGE_ROLES = {"user", "system", "developer", "assistant"}
ITEM_TYPES = {"message", "reasoning", "function_call", "function_call_output"}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


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


class RequestError(Exception):
    """A bad request: becomes an OpenAI-shaped error answer."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


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
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn every error into OpenAI's shape: ours, aiohttp's (404, 405, 413…), and unexpected ones (500)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except RequestError as exc:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code)
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


async def create_response(request: web.Request) -> web.Response:
    """POST /v1/responses, read top to bottom."""
    config, stats = request.app[CONFIG], request.app[STATS]
    stats.requests += 1
    stats.in_flight += 1
    stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
    try:
        # 1. Refuse a body that is too large before reading it, then parse it once.
        if (request.content_length or 0) > config.max_body_bytes:
            raise RequestError(
                413, f"The request body is larger than {config.max_body_bytes} bytes.", code="request_too_large"
            )
        raw = await read_body(request)
        body = parse_body(raw)

        # 2. Check it the way the real API does.
        items, tools = validate_request(body)
        check_call_ids(items)

        # 3. Inject a fault if the prompt or the fault rate asks for one.
        prompt = model.user_text(items)
        markers = parse_markers(prompt)
        key = hashlib.blake2b(raw, digest_size=8).hexdigest()
        attempt = read_attempt(request.headers.get("x-stainless-retry-count"))
        fault = config.faults.choose(key, attempt, markers)
        if fault:
            stats.faults[fault] += 1
            response = await inject_fault(fault, config)
            stats.statuses[response.status] += 1
            return response

        # 4. Ask the model for the next turn, and take the time a model would.
        parallel = body.get("parallel_tool_calls", True)
        turn = model.respond(items, tools, parallel)
        forced = None
        if markers.duration is not None:
            forced = markers.duration / model.planned_turns(prompt, tools, parallel)
        await asyncio.sleep(config.latency.delay(key, turn.output_tokens, forced))

        # 5. Answer a Response.
        stats.statuses[200] += 1
        return web.Response(
            text=json.dumps(build_response(body, tools, turn, key, len(raw))), content_type="application/json"
        )
    except RequestError as exc:
        stats.statuses[exc.status] += 1
        raise
    except asyncio.CancelledError:
        stats.disconnects += 1  # the client went away (or timed out) while we were "thinking"
        raise
    finally:
        stats.in_flight -= 1


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except (RequestPayloadError, HttpProcessingError) as exc:  # e.g. Content-Encoding: gzip on a plain body
        raise RequestError(
            400,
            f"The request body could not be read ({exc}). Send plain JSON, or a body "
            "that matches its Content-Encoding.",
            code="invalid_body",
        ) from None


async def expect_continue_only(request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` as aiohttp does; any other Expect value is a 417 in OpenAI's shape."""
    expect = request.headers.get("Expect", "")
    if expect.lower() == "100-continue":
        await _default_expect_handler(request)
        return None
    return error_response(
        417, f"Unsupported Expect header {expect!r}: send none, or 100-continue.", code="expectation_failed"
    )


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, "The request body is not valid UTF-8.", code="invalid_body") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            400,
            f"We could not parse the JSON body of your request ({exc.msg}). "
            'Send a JSON object such as {"model": "gpt-5-mini", "input": "Hi"}.',
            code="invalid_json",
        ) from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, or arrays nested 1000 deep
        raise RequestError(
            400,
            f"We could not parse the JSON body of your request ({type(exc).__name__}: it is "
            "nested too deeply or holds a number too large to read).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise RequestError(
            400, f"The request body must be a JSON object, not {type(body).__name__}.", code="invalid_json"
        )
    return body


def validate_request(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check the fields; return the input items (a string becomes one user message) and the tools."""
    for name in ("model", "input"):
        if body.get(name) is None:
            raise RequestError(
                400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
            )
    expect(body, "model", str, "a string such as 'gpt-5-mini'")
    if body.get("stream"):
        raise RequestError(
            400,
            "Streaming is not available offline: call responses.create without stream=True.",
            param="stream",
            code="unsupported_parameter",
        )
    if body.get("previous_response_id") is not None:
        raise RequestError(
            400,
            "The offline server keeps no state: send the whole conversation in `input` "
            "instead of previous_response_id.",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    for name, kind, what in (
        ("instructions", str, "a string"),
        ("parallel_tool_calls", bool, "true or false"),
        ("max_output_tokens", int, "an integer"),
        ("metadata", dict, "an object"),
        ("store", bool, "true or false"),
        ("reasoning", dict, 'an object such as {"effort": "low"}'),
        ("tools", list, "a list of tools"),
        ("temperature", (int, float), "a number"),
    ):
        expect(body, name, kind, what)
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise RequestError(
            400,
            f"Invalid value for 'reasoning.effort': {effort!r}; use one of {list(REASONING_EFFORTS)}.",
            param="reasoning.effort",
            code="invalid_value",
        )
    metadata = body.get("metadata") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise RequestError(
            400, "Invalid 'metadata': its keys and values must be strings.", param="metadata", code="invalid_type"
        )
    raw_input = body["input"]
    if isinstance(raw_input, str):
        items: list[dict[str, Any]] = [{"role": "user", "content": raw_input}]
    elif isinstance(raw_input, list):
        items = [validate_item(item, i) for i, item in enumerate(raw_input)]
    else:
        raise RequestError(
            400, "Invalid type for 'input': expected a string or a list of items.", param="input", code="invalid_type"
        )
    tools = [validate_tool(tool, i) for i, tool in enumerate(body.get("tools") or [])]
    return items, tools


def expect(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise RequestError(
            400,
            f"Invalid type for '{name}': expected {what}, got {type(value).__name__}.",
            param=name,
            code="invalid_type",
        )


def validate_item(item: Any, index: int) -> dict[str, Any]:
    param = f"input[{index}]"
    if not isinstance(item, dict):
        raise RequestError(400, f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    kind = item.get("type", "message")
    if not isinstance(kind, str) or kind not in ITEM_TYPES:  # a list or an object is not hashable: check first
        raise RequestError(
            400,
            f"Invalid '{param}.type': {kind!r} is not supported offline (use one of {sorted(ITEM_TYPES)}).",
            param=f"{param}.type",
            code="invalid_value",
        )
    if kind == "message":
        if not isinstance(item.get("role"), str) or item["role"] not in MESSAGE_ROLES:
            raise RequestError(
                400,
                f"Invalid '{param}.role': expected one of {sorted(MESSAGE_ROLES)}.",
                param=f"{param}.role",
                code="invalid_value",
            )
        content = item.get("content")
        if not isinstance(content, str) and not (
            isinstance(content, list)
            and all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in content)
        ):
            raise RequestError(
                400,
                f"Invalid '{param}.content': expected a string or a list of content parts.",
                param=f"{param}.content",
                code="invalid_type",
            )
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                raise RequestError(
                    400,
                    f"Missing or invalid '{param}.{name}': expected a string.",
                    param=f"{param}.{name}",
                    code="invalid_type",
                )
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), (str, list)):
            raise RequestError(
                400,
                f"Invalid '{param}': a function_call_output needs a string call_id and output.",
                param=param,
                code="invalid_type",
            )
    return item


def validate_tool(tool: Any, index: int) -> dict[str, Any]:
    param = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise RequestError(400, f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    if tool.get("type") != "function":
        raise RequestError(
            400,
            f"Unknown tool type {tool.get('type')!r} in '{param}': the offline server supports "
            'function tools only ({"type": "function", ...}).',
            param=f"{param}.type",
            code="invalid_value",
        )
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise RequestError(
            400,
            f"Missing required parameter: '{param}.name'.",
            param=f"{param}.name",
            code="missing_required_parameter",
        )
    if not isinstance(tool.get("parameters", {}), dict):
        raise RequestError(
            400,
            f"Invalid '{param}.parameters': expected a JSON schema object.",
            param=f"{param}.parameters",
            code="invalid_type",
        )
    return tool


def check_call_ids(items: list[dict[str, Any]]) -> None:
    """Every output must answer an earlier call, and every call must have its output (as the real API checks)."""
    open_calls: dict[str, int] = {}
    for item in items:
        if item.get("type") == "function_call":
            open_calls[item["call_id"]] = 1
        elif item.get("type") == "function_call_output":
            if item["call_id"] not in open_calls:
                raise RequestError(
                    400,
                    f"No tool call found for function call output with call_id {item['call_id']}.",
                    param="input",
                    code="invalid_value",
                )
            open_calls[item["call_id"]] = 0
    unanswered = [call_id for call_id, waiting in open_calls.items() if waiting]
    if unanswered:
        raise RequestError(
            400, f"No tool output found for function call {unanswered[0]}.", param="input", code="invalid_value"
        )


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


def build_response(
    body: dict[str, Any], tools: list[dict[str, Any]], turn: model.ModelTurn, key: str, input_bytes: int
) -> dict[str, Any]:
    """A Response exactly in the shape of the real API (see shared/responses-api.md §2 and §4)."""
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
        output.append(
            {
                "id": f"msg_{key}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
            }
        )
    input_tokens, output_tokens = max(1, input_bytes // 4), turn.output_tokens
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
        "output": output,
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
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [model_card(name) for name in MODELS]})


async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in MODELS:
        raise RequestError(
            404,
            f"The model '{name}' does not exist offline; try one of {list(MODELS)}.",
            param="model",
            code="model_not_found",
        )
    return web.json_response(model_card(name))


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1754000000, "owned_by": "agentlab-offline"}


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].as_json())


def create_app(config: ServerConfig) -> web.Application:
    """The aiohttp application. aiohttp's own body limit backs up the early Content-Length check."""
    app = web.Application(middlewares=[errors_as_json], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[STATS] = Stats()
    app.router.add_post("/v1/responses", create_response, expect_handler=expect_continue_only)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{name}", get_model)
    app.router.add_get("/offline/stats", get_stats)
    return app
