"""Building a ``Tool`` from a typed Python function: its JSON schema and the checkers of its arguments.

Type hints say what the model must send (``int``, ``float``, ``str``, ``bool``, ``list[...]``, ``Literal[...]``,
``X | None``), a Google-style docstring says what the tool and each parameter are for. A mistake in how a
tool is written raises ``ConfigurationError`` at once, when the tool is built.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, overload

from agentlab.errors import ConfigurationError
from agentlab.tools.calling import Checker, Tool

__all__ = ["tool", "build_tool", "parse_docstring", "schema_for"]

_JSON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    function: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a ``Tool`` from a typed function. Use as ``tool(fn)``, ``@tool`` or ``@tool(name=...)``."""
    if function is None:
        return lambda fn: build_tool(fn, name=name, description=description)
    return build_tool(function, name=name, description=description)


def build_tool(function: Callable[..., Any], *, name: str | None, description: str | None) -> Tool:
    """The ``Tool`` for ``function``: its name, its description, and the schema of its parameters."""
    if isinstance(function, Tool):
        return function
    label = check_function(function)
    summary, arg_docs = parse_docstring(inspect.getdoc(function) or "")
    parameters, checkers = parameters_of(function, label, arg_docs)
    return Tool(
        name=name or label,
        description=description or summary or f"The {label} tool.",
        parameters=parameters,
        function=function,
        checkers=checkers,
        # Strict mode requires every parameter to be required, so a tool with defaults is sent non-strict.
        strict=len(parameters["required"]) == len(parameters["properties"]),
    )


def check_function(function: Callable[..., Any]) -> str:
    """Refuse what cannot be a tool (a generator, something not callable); return the function's name."""
    label = getattr(function, "__name__", repr(function))
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        raise ConfigurationError(
            f"tool {label!r} is a generator: a tool must return one value. "
            "Use `return` instead of `yield` (for an async tool: `async def` with `return`)."
        )
    if not callable(function):
        raise ConfigurationError(f"a tool must be a function, got {type(function).__name__}")
    return label


def parameters_of(
    function: Callable[..., Any], label: str, arg_docs: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Checker]]:
    """The JSON schema of the function's parameters, and one checker per parameter."""
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    checkers: dict[str, Checker] = {}
    required: list[str] = []
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigurationError(f"tool {label!r}: *{param.name} is not supported; name each parameter")
        if param.name not in hints:
            raise ConfigurationError(
                f"tool {label!r}: parameter {param.name!r} has no type hint. "
                f"Add one so the model knows what to send, e.g. `{param.name}: float`."
            )
        properties[param.name], checkers[param.name] = schema_for(
            hints[param.name], f"tool {label!r}, parameter {param.name!r}"
        )
        if param.name in arg_docs:
            properties[param.name]["description"] = arg_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}, checkers


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and its ``Args:`` descriptions."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section = "summary"
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and stripped[:-1] in {"Args", "Arguments", "Parameters", "Returns", "Raises"}:
            section = "args" if stripped[:-1] in {"Args", "Arguments", "Parameters"} else "other"
        elif section == "summary":
            summary_lines.append(stripped)
        elif section == "args" and (match := _ARG_LINE.match(line)):
            args[match.group(1)] = match.group(2).strip()
    summary = " ".join(" ".join(summary_lines).split())
    return summary, args


def schema_for(hint: Any, where: str) -> tuple[dict[str, Any], Checker]:
    """The JSON schema for one type hint, and a checker that converts a decoded JSON value to it."""
    origin = typing.get_origin(hint)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}, make_scalar_checker(hint)
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        item_schema, item_checker = schema_for(item_hint, where)
        return {"type": "array", "items": item_schema}, make_list_checker(item_checker)
    if origin is Literal:
        choices = typing.get_args(hint)
        return {"enum": list(choices)}, make_choice_checker(choices)
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1:
            schema, checker = schema_for(inner[0], where)
            return {"anyOf": [schema, {"type": "null"}]}, make_optional_checker(checker)
    raise ConfigurationError(
        f"{where}: agentlab cannot describe the type {hint!r} to the model. "
        "Use int, float, str, bool, list[...], Literal[...] or X | None."
    )


def make_scalar_checker(kind: type) -> Checker:
    def check(value: Any) -> Any:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
            return value
        raise ValueError(f"must be {_JSON_TYPES[kind]}, got {json.dumps(value)}")

    return check


def make_list_checker(item_checker: Checker) -> Checker:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"must be an array, got {json.dumps(value)}")
        return [item_checker(item) for item in value]

    return check


def make_choice_checker(choices: tuple[Any, ...]) -> Checker:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"must be one of {list(choices)}, got {json.dumps(value)}")
        return value

    return check


def make_optional_checker(checker: Checker) -> Checker:
    return lambda value: None if value is None else checker(value)
