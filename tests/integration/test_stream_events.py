"""The event sequence of a streamed answer (agentlab/offline/responses.py), checked against openai's own types.

The answers come from the real offline server (non-streamed), so the events tell real responses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.responses import ResponseErrorEvent, ResponseFailedEvent, ResponseStreamEvent
from pydantic import TypeAdapter

from agentlab.offline import OfflineServer
from agentlab.offline.responses import (
    THINK_SHARE,
    RequestError,
    check_stream,
    error_event,
    failed_event,
    pauses,
    plan_events,
)
from agentlab.tools.math import MATH_TOOLS

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
TOOLS = [t.schema() for t in MATH_TOOLS]


async def answer(server: OfflineServer, prompt: str, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A non-streamed answer of the offline server, as the JSON it sent."""

    async def ask() -> dict[str, Any]:
        client = AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0)
        raw = await client.responses.with_raw_response.create(
            model="gpt-5-mini", input=prompt, extra_body={"tools": tools or []}
        )
        body: dict[str, Any] = json.loads(raw.content)
        return body

    return await ask()


def validated(events: list[dict[str, Any]]) -> list[ResponseStreamEvent]:
    """Every event through openai's discriminated union, with its sequence number."""
    return [EVENTS.validate_python({**event, "sequence_number": i}) for i, event in enumerate(events)]


async def test_a_text_answer_streams_word_by_word_in_the_real_order(server: OfflineServer) -> None:
    body = await answer(server, "Hello there, who are you?")
    events = validated(plan_events(body))
    kinds = [e.type for e in events]
    assert kinds[:6] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the reasoning item
        "response.output_item.done",
        "response.output_item.added",  # the message
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    text = body["output"][-1]["content"][0]["text"]
    assert len(deltas) > 3 and "".join(deltas) == text
    assert events[0].response.status == "in_progress" and events[0].response.output == []  # type: ignore[union-attr]
    assert events[-1].model_dump(mode="json", exclude_unset=True)["response"] == body  # the very same response


async def test_function_call_arguments_stream_in_pieces(server: OfflineServer) -> None:
    body = await answer(server, "What is 3 + 4, and 5 + 6?", TOOLS)
    events = validated(plan_events(body, obfuscate=False))
    calls = [item for item in body["output"] if item["type"] == "function_call"]
    assert len(calls) == 2
    for index, call in enumerate(body["output"]):
        if call["type"] != "function_call":
            continue
        pieces = [
            e.delta for e in events if e.type == "response.function_call_arguments.delta" and e.output_index == index
        ]
        done = [e for e in events if e.type == "response.function_call_arguments.done" and e.output_index == index]
        assert len(pieces) > 1 and "".join(pieces) == call["arguments"] == done[0].arguments
        added = [e for e in events if e.type == "response.output_item.added" and e.output_index == index]
        assert added[0].item.status == "in_progress" and added[0].item.arguments == ""  # type: ignore[union-attr]
    assert not any("obfuscation" in e for e in plan_events(body, obfuscate=False))


async def test_deltas_carry_an_obfuscation_pad_by_default(server: OfflineServer) -> None:
    deltas = [e for e in plan_events(await answer(server, "Hello")) if e["type"].endswith(".delta")]
    assert deltas and all(isinstance(e["obfuscation"], str) and e["obfuscation"] for e in deltas)


async def test_the_model_time_is_spread_over_the_tokens(server: OfflineServer) -> None:
    events = plan_events(await answer(server, "Hello there, who are you?"))
    waits = pauses(events, 2.0)
    assert sum(waits) == pytest.approx(2.0)
    deltas = [w for e, w in zip(events, waits, strict=True) if e["type"].endswith(".delta")]
    assert len(set(round(w, 9) for w in deltas)) == 1  # evenly
    first = next(i for i, e in enumerate(events) if e["type"].endswith(".delta"))
    assert sum(waits[: first + 1]) == pytest.approx(2.0 * THINK_SHARE + deltas[0])  # the time to first token
    assert waits[:3] == [0.0, 0.0, 0.0]  # response.created and in_progress go out at once


async def test_fault_events_pass_openai_validation(server: OfflineServer) -> None:
    failed = ResponseFailedEvent.model_validate({**failed_event(await answer(server, "Hi")), "sequence_number": 7})
    assert failed.response.status == "failed" and failed.response.error is not None
    assert failed.response.error.code == "server_error"
    error = ResponseErrorEvent.model_validate({**error_event(ValueError("boom")), "sequence_number": 3})
    assert error.code == "server_error" and "boom" in error.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stream_options": {"include_obfuscation": False}}, "stream_options"),
        ({"stream": False, "stream_options": {}}, "stream_options"),
        ({"stream": True, "stream_options": []}, "stream_options"),
        ({"stream": True, "stream_options": {"include_usage": True}}, "stream_options.include_usage"),
        ({"stream": True, "stream_options": {"include_obfuscation": "no"}}, "stream_options.include_obfuscation"),
    ],
)
def test_parameters_that_cannot_be_streamed_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as caught:
        check_stream(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_good_streaming_parameters_pass() -> None:
    for body in (
        {},
        {"stream": False},
        {"stream": True},
        {"stream": True, "stream_options": {"include_obfuscation": False}},
    ):
        check_stream(body)  # no RequestError
