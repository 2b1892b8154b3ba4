"""Tools: schemas from type hints and docstrings, and safe calls that turn model mistakes into text."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Literal

import pytest

from agentlab import Agent, ConfigurationError, Fulfilled, Outcome, Tool, run_settled, tool
from agentlab.tools import format_value
from agentlab.tools.math import MATH_TOOLS, divide_numbers, multiply_numbers, subtract_numbers, sum_numbers


def test_schema_comes_from_hints_and_docstring() -> None:
    assert sum_numbers.schema() == {
        "type": "function",
        "name": "sum_numbers",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "number", "description": "The first number."},
                "b": {"type": "number", "description": "The second number."},
            },
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        "strict": True,
    }


async def test_lists_literals_optionals_and_defaults() -> None:
    @tool(name="stats")
    def summarize(values: list[float], how: Literal["mean", "max"], label: str | None = None) -> str:
        """Summarize numbers."""
        return f"{how}:{max(values)}:{label}"

    props = summarize.parameters["properties"]
    assert props["values"] == {"type": "array", "items": {"type": "number"}}
    assert props["how"] == {"enum": ["mean", "max"]}
    assert props["label"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert summarize.parameters["required"] == ["values", "how"]
    assert summarize.strict is False  # a parameter with a default cannot be strict
    assert await summarize.call('{"values": [1, 5, 2], "how": "max"}') == "max:5.0:None"


async def test_math_tools_compute() -> None:
    assert await sum_numbers.call('{"a": 3, "b": 4}') == "7"
    assert await multiply_numbers.call('{"a": 1.5, "b": 2}') == "3"
    assert await subtract_numbers.call('{"a": 3, "b": 10}') == "-7"
    assert await divide_numbers.call('{"a": 10, "b": 4}') == "2.5"
    assert sum_numbers(2, 3) == 5  # a Tool still calls like its function
    assert [t.name for t in MATH_TOOLS] == ["sum_numbers", "multiply_numbers", "subtract_numbers", "divide_numbers"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 3, "b": ', "not valid JSON"),
        ("[3, 4]", "must be a JSON object"),
        ('{"a": "three", "b": 4}', "parameter a must be number"),
        ('{"a": true, "b": 4}', "parameter a must be number"),
        ('{"a": 3}', "missing b"),
        ('{"a": 3, "b": 4, "c": 5}', "has no parameter c"),
        ('{"a": "__import__(\'os\').system(\'id\')", "b": 1}', "must be number"),
    ],
)
async def test_model_mistakes_come_back_as_error_text(arguments: str, expected: str) -> None:
    output = await sum_numbers.call(arguments)
    assert output.startswith("error: ")
    assert expected in output


async def test_a_tool_that_raises_gives_error_text() -> None:
    output = await divide_numbers.call('{"a": 1, "b": 0}')
    assert output == "error: divide_numbers raised ZeroDivisionError: cannot divide by zero"


async def test_sync_tools_run_in_a_worker_thread_and_async_tools_on_the_loop() -> None:
    seen: dict[str, str] = {}

    @tool
    def where_sync(x: int) -> int:
        """Record the thread."""
        seen["sync"] = threading.current_thread().name
        return x

    @tool
    async def where_async(x: int) -> int:
        """Record the thread."""
        seen["async"] = threading.current_thread().name
        return x

    assert await where_sync.call('{"x": 1}') == "1"
    assert await where_async.call('{"x": 2.0}') == "2"  # an integral float is accepted for int
    assert seen["sync"] != threading.main_thread().name
    assert seen["async"] == threading.main_thread().name


def test_library_mistakes_raise_clear_errors() -> None:
    def no_hints(a, b):  # type: ignore[no-untyped-def]
        return a + b

    with pytest.raises(ConfigurationError, match=r"parameter 'a' has no type hint.*a: float"):
        tool(no_hints)

    async def stream(n: int) -> AsyncIterator[int]:
        yield n

    with pytest.raises(ConfigurationError, match="is a generator"):
        tool(stream)

    def odd_type(a: complex) -> complex:
        return a

    with pytest.raises(ConfigurationError, match="cannot describe the type"):
        tool(odd_type)


def test_format_value() -> None:
    assert format_value(7.0) == "7"
    assert format_value(0.1 + 0.2) == "0.30000000000000004"
    assert format_value([1, 2]) == "[1, 2]"
    assert format_value({"x": 1}) == '{"x": 1}'
    assert format_value(None) == "None"


def test_math_module_never_evals() -> None:
    import inspect

    import agentlab.tools as tools_pkg
    import agentlab.tools.math as math_module

    for module in (tools_pkg, math_module):
        source = inspect.getsource(module)
        assert "eval(" not in source.replace("never ``eval``", "")
        assert "exec(" not in source


async def test_arguments_that_overflow_or_nest_too_deep_come_back_as_errors() -> None:
    huge = await sum_numbers.call('{"a": ' + "9" * 400 + ', "b": 1}')
    assert huge.startswith("error: the arguments for sum_numbers could not be read (OverflowError)")
    deep = await sum_numbers.call("[" * 100_000 + "]" * 100_000)
    assert deep.startswith("error: the arguments for sum_numbers could not be read (RecursionError)")
    too_many_digits = await sum_numbers.call('{"a": ' + "9" * 5000 + ', "b": 1}')
    assert too_many_digits.startswith("error: ") and "digits" in too_many_digits


async def test_a_return_value_that_cannot_be_text_is_an_error() -> None:
    @tool
    def odd(a: int) -> dict[str, object]:
        """Return something json cannot write."""
        return {"value": object()}

    assert (await odd.call('{"a": 1}')).startswith("error: odd returned a value that cannot be sent as text")


@tool
def sync_cancels(a: float, b: float) -> float:
    """Raise CancelledError from a worker thread."""
    raise asyncio.CancelledError("from the tool")


@tool
async def async_cancels(a: float, b: float) -> float:
    """Raise CancelledError on the loop, without anyone cancelling the task."""
    raise asyncio.CancelledError("from the tool")


@tool
async def exits_generator(a: float, b: float) -> float:
    """Raise GeneratorExit."""
    raise GeneratorExit("from the tool")


@pytest.mark.parametrize("rogue", [sync_cancels, async_cancels, exits_generator])
async def test_a_tool_that_raises_cancelled_or_generator_exit_is_a_failing_tool(rogue: Tool) -> None:
    """It comes back to the model as error text, and run_settled keeps the other results."""
    assert (await rogue.call('{"a": 1, "b": 2}')).startswith(f"error: {rogue.name} raised ")

    # the rogue stands in for sum_numbers, so that the scripted model calls it for "+"
    adder = tool(rogue.function, name="sum_numbers", description="Add two numbers.")
    agent = Agent(name="r", instructions="", tools=(adder, multiply_numbers))
    outcomes = await run_settled(agent, ["What is 4 * 5?", "What is 2 + 3?", "What is 6 * 7?"])
    assert [o.status for o in outcomes] == ["fulfilled"] * 3
    assert [numbers(o) for o in outcomes] == [[20.0], [], [42.0]]
    assert isinstance(outcomes[1], Fulfilled)
    errors = [m["output"] for m in outcomes[1].value.messages if m.get("type") == "function_call_output"]
    assert errors and errors[0].startswith("error: sum_numbers raised ")


def numbers(outcome: Outcome) -> list[float]:
    """The numbers of the tool outputs of a conversation (an error text has none)."""
    assert isinstance(outcome, Fulfilled)
    outputs = [m["output"] for m in outcome.value.messages if m.get("type") == "function_call_output"]
    return [float(o) for o in outputs if not o.startswith("error")]


async def test_a_real_cancellation_still_cancels_a_tool() -> None:
    started = asyncio.Event()

    @tool
    async def waits(a: int) -> int:
        """Wait for ever."""
        started.set()
        await asyncio.sleep(3600)
        return a

    task = asyncio.create_task(waits.call('{"a": 1}'))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
