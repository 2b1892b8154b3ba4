"""``Tool``: one function the model may call, its schema, and how to call it safely.

``Tool.call`` never raises for the model's mistakes: they come back as ``"error: …"`` text. A sync function
runs in agentlab's own pool of daemon threads (``threads.py``), an async one on the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentlab.tools.threads import tool_threads

__all__ = ["Tool", "Checker", "format_value", "being_cancelled"]

# A checker takes a decoded JSON value and returns it converted, or raises ValueError with a reason.
Checker = Callable[[Any], Any]


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
        worker thread (``threads.py``) so that a slow tool cannot freeze the other conversations.
        """
        try:
            kwargs = self.check_arguments(arguments)
        except ValueError as exc:
            return f"error: {exc}"
        except (OverflowError, RecursionError) as exc:  # a number too large for a float, JSON nested too deeply
            return f"error: the arguments for {self.name} could not be read ({type(exc).__name__}); send plain numbers"
        try:
            value = await (self.function(**kwargs) if self.is_async else run_in_thread(self.function, kwargs))
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


async def run_in_thread(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run a sync function in the tool pool. If we are cancelled meanwhile, its thread is written off."""
    pool = tool_threads()
    job = pool.submit(function, kwargs)
    try:
        return await asyncio.wrap_future(job.future)
    except asyncio.CancelledError:
        pool.abandon(job)  # no-op if it had finished: then the CancelledError was the tool's own
        raise
