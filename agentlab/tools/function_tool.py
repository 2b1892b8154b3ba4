"""``Tool`` and ``tool()``: a typed Python function the model may call, its schema, and calling it safely.

``tool(fn)`` (or ``@tool``) reads the function's type hints (``int``, ``float``, ``str``, ``bool``,
``list[...]``, ``Literal[...]``, ``X | None``) and its Google-style docstring, and builds the function-tool
schema that the Responses API expects (strict mode, ``additionalProperties: false``)::

    @tool
    def sum_numbers(a: float, b: float) -> float:
        \"\"\"Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        \"\"\"
        return a + b

Two kinds of mistakes are kept apart:

- **Mistakes in how the library is used** (a parameter without a type hint, a generator, …) raise
  ``ConfigurationError`` at once, when the tool is built.
- **Mistakes of the model** (arguments that are not JSON, wrong types, a tool that raises) never raise:
  ``Tool.call`` returns the text ``"error: …"``, which goes back to the model so that it can try again.

Arguments are parsed as JSON and checked against the type hints: never ``eval``-ed. A sync function runs in
agentlab's own threads (``threads.py`` says why not ``asyncio.to_thread``); an async one is awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from agentlab.errors import ConfigurationError
from agentlab.tools.threads import tool_threads

__all__ = ["Tool", "tool", "format_value"]

# A checker takes a decoded JSON value and returns it converted, or raises ValueError with a reason.
Checker = Callable[[Any], Any]

_JSON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, its schema, and how to call it safely."""

    name: str
    description: str
    # The schema and checkers follow from `function`; leaving them out of == and hash() keeps Tool (and so a
    # frozen Agent) hashable.
    parameters: dict[str, Any] = field(repr=False, compare=False)
    function: Callable[..., Any] = field(repr=False)
    checkers: dict[str, Checker] = field(repr=False, compare=False)
    strict: bool = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the plain function, as if ``@tool`` were not there (handy in tests and notebooks)."""
        return self.function(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def schema(self) -> dict[str, Any]:
        """The Responses API function-tool definition (what goes in ``tools=[...]``)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": self.strict,
        }

    async def call(self, arguments: str) -> str:
        """Parse ``arguments`` (JSON text from the model), call the function, and return its output as text.

        Never raises for the model's mistakes: they come back as ``"error: …"``. A sync function runs in a
        worker thread so that a slow tool cannot freeze the other conversations.
        """
        try:
            kwargs = self.check_arguments(arguments)
        except ValueError as exc:
            return f"error: {exc}"
        except (OverflowError, RecursionError) as exc:  # a number too large for a float, JSON nested too deeply
            return f"error: the arguments for {self.name} could not be read ({type(exc).__name__}); send plain numbers"
        try:
            value = await (self.function(**kwargs) if self.is_async else tool_threads().run(self.function, kwargs))
        except Exception as exc:  # the tool's own failure goes back to the model, not up the stack
            return f"error: {self.name} raised {type(exc).__name__}: {exc}"
        except (asyncio.CancelledError, GeneratorExit) as exc:
            if being_cancelled():  # the conversation itself is being cancelled: let the cancel through
                raise
            return f"error: {self.name} raised {type(exc).__name__}: {exc}"
        try:
            return format_value(value)
        except (TypeError, ValueError) as exc:  # e.g. a dict holding an object json cannot write
            return f"error: {self.name} returned a value that cannot be sent as text ({type(exc).__name__}: {exc})"

    def check_arguments(self, arguments: str) -> dict[str, Any]:
        """Decode the JSON arguments and check them against the type hints; ValueError says what is wrong."""
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"the arguments for {self.name} are not valid JSON ({exc.msg}): {arguments!r}") from None
        if not isinstance(decoded, dict):
            raise ValueError(f"the arguments for {self.name} must be a JSON object, got {arguments!r}")
        unknown = sorted(set(decoded) - set(self.checkers))
        if unknown:
            raise ValueError(f"{self.name} has no parameter {', '.join(unknown)}; it takes {self._signature()}")
        missing = [p for p in self.parameters["required"] if p not in decoded]
        if missing:
            raise ValueError(f"{self.name} is missing {', '.join(missing)}; it takes {self._signature()}")
        checked = {}
        for key, value in decoded.items():
            try:
                checked[key] = self.checkers[key](value)
            except ValueError as exc:
                raise ValueError(f"{self.name}: parameter {key} {exc}") from None
        return checked

    def _signature(self) -> str:
        props = self.parameters["properties"]
        return "(" + ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items()) + ")"


def being_cancelled() -> bool:
    """Whether the running task was asked to stop (``task.cancel()``, a runner's timeout, Ctrl-C).

    A tool that raises ``CancelledError`` or ``GeneratorExit`` on its own is just a failing tool, and its
    error goes back to the model; only a real cancellation of this task may end the conversation.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def format_value(value: Any) -> str:
    """Turn a tool's return value into the text the model reads (7.0 → "7", lists and dicts → JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


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
            return {"anyOf": [schema, {"type": "null"}]}, lambda value: None if value is None else checker(value)
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
