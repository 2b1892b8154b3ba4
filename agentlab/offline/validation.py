"""Checking a ``POST /v1/responses`` request the way the real API does, with a message that says what to fix.

Every check raises ``RequestError``, which the server turns into OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}``. Bad input gets a 4xx, never a 500: every value is
checked for its type before it is used (a list where a string belongs is not even hashable).
"""

from __future__ import annotations

import json
from typing import Any

from agentlab.offline.streaming import stream_problem

__all__ = ["RequestError", "parse_body", "validate_request", "check_call_ids"]

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


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of the body, or a 400 that says what is wrong with it."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid("The request body is not valid UTF-8.", None, "invalid_body") from None
    except json.JSONDecodeError as exc:
        message = (
            f"We could not parse the JSON body of your request ({exc.msg}). "
            'Send a JSON object such as {"model": "gpt-5-mini", "input": "Hi"}.'
        )
        raise invalid(message, None, "invalid_json") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, or arrays nested 1000 deep
        message = (
            f"We could not parse the JSON body of your request ({type(exc).__name__}: it is "
            "nested too deeply or holds a number too large to read)."
        )
        raise invalid(message, None, "invalid_json") from None
    if not isinstance(body, dict):
        raise invalid(f"The request body must be a JSON object, not {type(body).__name__}.", None, "invalid_json")
    return body


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
    problem = stream_problem(body)  # `stream` and `stream_options`: a 400 before any stream starts
    if problem:
        raise invalid(*problem)
    if body.get("previous_response_id") is not None:
        message = (
            "The offline server keeps no state: send the whole conversation in `input` instead of previous_response_id."
        )
        raise invalid(message, "previous_response_id", "unsupported_parameter")


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
