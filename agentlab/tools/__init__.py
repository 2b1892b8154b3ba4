"""Tools: plain Python functions that the model may call.

``tool(fn)`` (or ``@tool``) reads a function's type hints and its Google-style docstring and builds the
function-tool schema that the Responses API expects::

    @tool
    def sum_numbers(a: float, b: float) -> float:
        \"\"\"Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        \"\"\"
        return a + b

Two kinds of mistakes are kept apart:

- **Mistakes in how the library is used** (a parameter without a type hint, an async generator, …) raise
  ``ConfigurationError`` at once, when the tool is built.
- **Mistakes of the model** (an unknown tool, arguments that are not JSON, wrong types, a tool that raises)
  never raise: ``Tool.call`` returns the text ``"error: …"``, which goes back to the model so that it can
  try again. That is what real agent loops do.

Tools never ``eval`` their arguments: they are parsed as JSON and checked against the type hints.

Read on in this order: ``calling.py`` (the ``Tool`` and how a call runs), ``threads.py`` (the pool that sync
tools run in), ``build.py`` (a ``Tool`` from a function), ``math.py`` (the lessons' tools). This file only
re-exports, as httpx's ``__init__`` does.
"""

from agentlab.tools.build import tool
from agentlab.tools.calling import Tool, format_value

__all__ = ["Tool", "tool", "format_value"]
