"""Mistakes in how the library is used get a clear error that names the problem and its fix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agentlab import Agent, ConfigurationError, make_client, run_settled, tool
from agentlab.tools.math import MATH_TOOLS

AGENT = Agent(name="calc", instructions="", tools=MATH_TOOLS)


def test_prompts_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"got a single str: wrap it in \[\.\.\.\]"):
        asyncio.run(run_settled(AGENT, "What is 1 + 1?"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"prompts\[2\]: a prompt must be a str or a list of input items .* got int"):
        asyncio.run(run_settled(AGENT, ["What is 1 + 1?", "What is 2 + 2?", 3]))  # type: ignore[list-item]


def test_a_tool_without_type_hints() -> None:
    def add(a, b):  # type: ignore[no-untyped-def]
        return a + b

    with pytest.raises(ConfigurationError, match=r"parameter 'a' has no type hint\. .*e\.g\. `a: float`"):
        tool(add)


def test_an_async_generator_as_a_tool() -> None:
    async def numbers(n: int) -> AsyncIterator[int]:
        yield n

    with pytest.raises(ConfigurationError, match=r"is a generator: a tool must return one value\. Use `return`"):
        Agent(name="x", instructions="", tools=[numbers])  # type: ignore[list-item]


def test_max_turns_zero() -> None:
    with pytest.raises(ConfigurationError, match="max_turns must be a whole number of at least 1, got 0"):
        Agent(name="x", instructions="", max_turns=0)


def test_the_real_backend_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_BACKEND", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"needs an API key: set OPENAI_API_KEY .* or unset AGENTLAB_BACKEND"):
        make_client()
