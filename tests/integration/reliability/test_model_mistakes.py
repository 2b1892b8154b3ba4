"""The model's mistakes go back to it as "error: …" text, and the conversation still finishes.

The offline model makes each mistake on purpose when the prompt has a marker: ``[mistake=unknown_tool]``,
``[mistake=bad_json]``, ``[mistake=wrong_types]``; ``[loop]`` makes it call tools forever.
"""

from __future__ import annotations

import json

import pytest

from agentlab import Agent, MaxTurnsExceeded, RunResult, run_settled, tool
from agentlab.offline import LatencyModel, OfflineServer, ServerConfig
from agentlab.tools.math import MATH_TOOLS, multiply_numbers

from .conftest import agent_for, close


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.01))


async def run(agent: Agent, prompt: str) -> RunResult:
    async def main() -> RunResult:
        try:
            return await agent.run(prompt)
        finally:
            await close(agent)

    return await main()


def outputs(messages: list[dict[str, object]]) -> list[str]:
    return [str(m["output"]) for m in messages if m.get("type") == "function_call_output"]


def calls(messages: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(m["name"], m["arguments"]) for m in messages if m.get("type") == "function_call"]


@pytest.mark.parametrize(
    ("marker", "call", "error"),
    [
        (
            "unknown_tool",
            ("calculator_9000", '{"a":1,"b":2}'),
            "error: there is no tool named 'calculator_9000'; the tools are: sum_numbers, multiply_numbers, "
            "subtract_numbers, divide_numbers",
        ),
        (
            "bad_json",
            ("sum_numbers", '{"a": 3, "b": '),
            'error: the arguments for sum_numbers are not valid JSON (Expecting value): \'{"a": 3, "b": \'',
        ),
        (
            "wrong_types",
            ("sum_numbers", '{"a":"three","b":"four"}'),
            'error: sum_numbers: parameter a must be number, got "three"',
        ),
    ],
)
async def test_a_mistake_goes_back_to_the_model_and_the_conversation_finishes(
    server: OfflineServer, marker: str, call: tuple[str, str], error: str
) -> None:
    result = await run(agent_for(server), f"What is 12 + 30? [mistake={marker}]")
    print(
        f"\n{marker}: {call[0]}({call[1]}) → {outputs(result.messages)[0]!r}; answer {result.output_text!r} "
        f"after {result.turns} turns"
    )
    assert calls(result.messages) == [call, ("sum_numbers", '{"a":12,"b":30}')]
    assert outputs(result.messages) == [error, "42"]
    assert result.output_text == "12 + 30 = 42."
    assert result.turns == 3


async def test_a_tool_that_raises_goes_back_to_the_model_and_the_answer_is_right(server: OfflineServer) -> None:
    """A test tool that raises ValueError; the model calls it by mistake, reads the error, and carries on."""

    @tool(description="Broken on purpose.")
    def calculator_9000(a: float, b: float) -> float:
        raise ValueError("the calculator is out of order")

    agent = agent_for(server, tools=(*MATH_TOOLS, calculator_9000))
    result = await run(agent, "What is 12 + 30? [mistake=unknown_tool]")  # the mistake: calling calculator_9000
    print(f"\na tool raising ValueError: {outputs(result.messages)[0]!r}; answer {result.output_text!r}")
    assert calls(result.messages)[0] == ("calculator_9000", '{"a":1,"b":2}')
    error = "error: calculator_9000 raised ValueError: the calculator is out of order"
    assert outputs(result.messages) == [error, "42"]
    assert result.output_text == "12 + 30 = 42."


async def test_a_tool_that_always_raises_ends_the_conversation_with_an_answer_that_says_so(
    server: OfflineServer,
) -> None:
    """The tool the model needs raises: no exception escapes; the model reports the error in its answer."""

    @tool
    def sum_numbers(a: float, b: float) -> float:
        """Add two numbers (broken)."""
        raise ValueError("the adder is out of order")

    result = await run(agent_for(server, tools=(sum_numbers, multiply_numbers)), "What is 2 + 2?")
    print(f"\na needed tool raising ValueError: answer {result.output_text!r}")
    assert outputs(result.messages) == ["error: sum_numbers raised ValueError: the adder is out of order"]
    assert result.output_text == (
        "I could not finish: sum_numbers(a=2, b=2) returned error: sum_numbers raised "
        "ValueError: the adder is out of order"
    )


async def test_mistakes_in_a_batch_are_fulfilled_not_rejected(server: OfflineServer) -> None:
    markers = ["unknown_tool", "bad_json", "wrong_types"] * 10

    agent = agent_for(server)
    try:
        batch = await run_settled(agent, [f"What is {i} + 30? [mistake={m}]" for i, m in enumerate(markers)])
    finally:
        await close(agent)
    assert [o.status for o in batch] == ["fulfilled"] * len(markers)
    answers = [o.value.output_text for o in batch]
    print(f"\n{len(markers)} conversations with a mistake each: {len(answers)} fulfilled, all answers right")
    assert answers == [f"{i} + 30 = {i + 30}." for i in range(len(markers))]


async def test_max_turns_exceeded_carries_the_partial_transcript(server: OfflineServer) -> None:
    agent = agent_for(server, max_turns=4)
    with pytest.raises(MaxTurnsExceeded) as caught:
        await run(agent, "What is 1 + 1? [loop]")
    error = caught.value
    transcript = error.transcript
    kinds = [m.get("type", "message") for m in transcript]
    print(
        f"\nMaxTurnsExceeded(max_turns={error.max_turns}): transcript of {len(transcript)} items, "
        f"{kinds.count('function_call')} calls; message: {error}"
    )
    assert error.max_turns == 4
    assert len(transcript) == 1 + 3 * 4
    assert transcript[0] == {"role": "user", "content": "What is 1 + 1? [loop]"}
    assert kinds == ["message"] + ["reasoning", "function_call", "function_call_output"] * 4
    assert [(m["name"], json.loads(m["arguments"])) for m in transcript if m.get("type") == "function_call"] == [
        ("sum_numbers", {"a": 1, "b": 1})
    ] * 4
    assert outputs(transcript) == ["2"] * 4
    call_ids = [m["call_id"] for m in transcript if m.get("type") == "function_call"]
    assert [m["call_id"] for m in transcript if m.get("type") == "function_call_output"] == call_ids
    assert "max_turns=4" in str(error) and "13 items" in str(error) and ".transcript" in str(error)


async def test_max_turns_exceeded_in_a_batch_is_a_rejection_with_its_transcript(server: OfflineServer) -> None:
    async def main() -> list[object]:
        agent = agent_for(server, max_turns=4)
        try:
            return list(await run_settled(agent, ["What is 1 + 1? [loop]", "What is 2 + 3?"]))
        finally:
            await close(agent)

    looped, finished = await main()
    assert finished.value.output_text == "2 + 3 = 5."  # type: ignore[attr-defined]
    reason = looped.reason  # type: ignore[attr-defined]
    print(
        f"\nin run_settled: {looped.status} with {type(reason).__name__}, "  # type: ignore[attr-defined]
        f"transcript of {len(reason.transcript)} items; the other conversation fulfilled"
    )
    assert isinstance(reason, MaxTurnsExceeded) and len(reason.transcript) == 13
