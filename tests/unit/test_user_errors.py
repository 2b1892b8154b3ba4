"""Mistakes in how the library is used raise at once, with a message that names the problem and its fix."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, cast

import pytest

from agentlab import (
    Agent,
    ConfigurationError,
    as_completed,
    make_client,
    run_bounded,
    run_concurrent,
    run_serial,
    run_settled,
    tool,
)
from agentlab.tools.math import MATH_TOOLS

AGENT = Agent(name="calc", instructions="", tools=MATH_TOOLS)


async def drain(agent: Agent, prompts: Any) -> list[Any]:
    stream = cast(AsyncGenerator[Any, None], as_completed(agent, prompts))
    async with contextlib.aclosing(stream):
        return [pair async for pair in stream]


RUNNERS: dict[str, Callable[[Agent, Any], Coroutine[Any, Any, Any]]] = {
    "run_serial": run_serial,
    "run_concurrent": run_concurrent,
    "run_settled": run_settled,
    "run_bounded": lambda agent, prompts: run_bounded(agent, prompts, max_concurrency=2),
    "as_completed": drain,
}


async def raised(runner: str, prompts: Any) -> TypeError:
    with pytest.raises(TypeError) as caught:
        await RUNNERS[runner](AGENT, prompts)
    return caught.value


@pytest.mark.parametrize("runner", RUNNERS)
async def test_one_string_instead_of_a_list_of_prompts(runner: str) -> None:
    error = await raised(runner, "What is 1 + 1?")
    print(f"\n{runner}(agent, 'one string'): TypeError: {error}")
    assert str(error) == "prompts must be a list of prompts, got a single str: wrap it in [...]"


@pytest.mark.parametrize("runner", RUNNERS)
async def test_a_prompt_of_the_wrong_type_is_named_by_its_index(runner: str) -> None:
    error = await raised(runner, ["What is 1 + 1?", "What is 2 + 2?", 3])
    print(f"\n{runner}(agent, [str, str, 3]): TypeError: {error}")
    assert str(error).startswith("prompts[2]: a prompt must be a str or a list of input items")
    assert str(error).endswith("got int")
    assert "{'role': 'user', 'content': '...'}" in str(error)  # it shows what a prompt looks like


async def test_nothing_runs_when_a_prompt_is_bad() -> None:
    started: list[str] = []
    agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
    with pytest.raises(TypeError):
        bad: list[Any] = ["What is 1 + 1?", None]
        await run_settled(agent, bad, on_event=lambda i, e: started.append(e.kind))
    print(f"\n[str, None]: {len(started)} events before the TypeError")
    assert started == [], "the prompts are checked before any conversation starts"


def test_a_tool_without_type_hints() -> None:
    def add(a, b: float):  # type: ignore[no-untyped-def]
        return a + b

    with pytest.raises(ConfigurationError) as caught:
        tool(add)
    print(f"\ntool(add) without a hint on a: ConfigurationError: {caught.value}")
    assert str(caught.value) == (
        "tool 'add': parameter 'a' has no type hint. Add one so the model knows what to send, e.g. `a: float`."
    )
    with pytest.raises(ConfigurationError, match=r"parameter 'a' has no type hint.*`a: float`"):
        Agent(name="x", instructions="", tools=[add])  # type: ignore[arg-type]


def test_an_async_generator_as_a_tool() -> None:
    async def numbers(n: int) -> AsyncIterator[int]:
        yield n

    def counting(n: int) -> Iterator[int]:
        yield n

    for function in (numbers, counting):
        with pytest.raises(ConfigurationError) as caught:
            Agent(name="x", instructions="", tools=[function])  # type: ignore[arg-type]
        print(f"\n{function.__name__} as a tool: ConfigurationError: {caught.value}")
        assert str(caught.value).startswith(f"tool '{function.__name__}' is a generator: a tool must return one value.")
        assert "Use `return` instead of `yield`" in str(caught.value)


@pytest.mark.parametrize("max_turns", [0, -1])
def test_max_turns_below_one(max_turns: int) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Agent(name="x", instructions="", max_turns=max_turns)
    print(f"\nAgent(max_turns={max_turns}): ConfigurationError: {caught.value}")
    assert str(caught.value) == f"max_turns must be a whole number of at least 1, got {max_turns}"


def test_the_real_backend_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_BACKEND", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        make_client()
    print(f"\nAGENTLAB_BACKEND=openai without OPENAI_API_KEY: ConfigurationError: {caught.value}")
    assert "set OPENAI_API_KEY" in str(caught.value)
    assert "unset AGENTLAB_BACKEND to use the offline server" in str(caught.value)
    monkeypatch.setenv("OPENAI_API_KEY", "   ")  # blank is no key either
    with pytest.raises(ConfigurationError, match="set OPENAI_API_KEY"):
        make_client()


async def test_the_real_backend_without_a_key_fails_the_first_run_not_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the default client (what a learner's Agent uses): the same message, raised from run()."""
    monkeypatch.setenv("AGENTLAB_BACKEND", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="set OPENAI_API_KEY") as caught:
        await AGENT.run("What is 1 + 1?")
    print(f"\nagent.run() with AGENTLAB_BACKEND=openai and no key: {type(caught.value).__name__}")


def test_one_tool_instead_of_a_list_of_tools() -> None:
    from agentlab.tools.math import sum_numbers

    with pytest.raises((TypeError, ConfigurationError)) as caught:
        Agent(name="x", instructions="", tools=sum_numbers)  # type: ignore[arg-type]
    print(f"\nAgent(tools=sum_numbers): {type(caught.value).__name__}: {caught.value}")
    message = str(caught.value)
    assert "tools" in message and ("[" in message or "list" in message or "tuple" in message), message
