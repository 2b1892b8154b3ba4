"""Proxy mode: the markers work in front of a real API, which never sees one, and gets the key only in Authorization.

"The real API" here is a stand-in: the offline server, recording every request it receives (tests/proxy_support.py).
Everything is real: the openai client, the proxy's aiohttp app, the stand-in's aiohttp app, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from proxy_support import (
    FAKE_KEY,
    Served,
    agent_of,
    assert_key_only_in_authorization,
    client_of,
    get_json,
    markers_in,
)

from agentlab import Agent, BackendError, ConfigurationError, default_client, make_client, offline_server
from agentlab.batch import request_line
from agentlab.offline import start_process
from agentlab.tools.math import MATH_TOOLS

SCALE = 0.05  # conftest.py sets AGENTLAB_TIME_SCALE=0.05 for this process, so the proxy scales by it too


async def test_markers_are_removed_from_every_input_text_and_the_instructions(upstream: Served, proxy: Served) -> None:
    before = len(upstream.received)
    client = client_of(proxy)
    answer = await client.responses.create(
        model="gpt-5-mini",
        instructions="Be brief. [duration=1]",
        input=[
            {"role": "developer", "content": "Use numbers. [fault=500x0]"},
            {"role": "user", "content": [{"type": "input_text", "text": "What is 2 + 3? [duration=1] [mystery=7]"}]},
        ],
    )
    await client.close()
    assert answer.output_text == "2 + 3 = 5."  # the stand-in is the scripted model: it still reads the question
    sent = upstream.received[before:]
    assert len(sent) == 1 and markers_in(sent) == []
    body = json.loads(sent[0].body)
    assert body["instructions"] == "Be brief."
    assert body["input"][1]["content"][0]["text"] == "What is 2 + 3? [mystery=7]"  # unknown brackets stay
    assert_key_only_in_authorization(sent)


async def test_a_request_without_markers_is_forwarded_byte_for_byte(upstream: Served, proxy: Served) -> None:
    before = len(upstream.received)
    raw = json.dumps({"model": "gpt-5-mini", "input": [{"role": "user", "content": "What is 4 * 5?"}]}).encode()
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {FAKE_KEY}", "Content-Type": "application/json"}
        async with session.post(proxy.base_url + "/responses", data=raw, headers=headers) as answer:
            assert answer.status == 200
            assert "4 * 5 = 20" in (await answer.json())["output"][-1]["content"][0]["text"]
    assert [r.body for r in upstream.received[before:]] == [raw]


async def test_duration_holds_the_final_answer_for_the_whole_conversation(upstream: Served, proxy: Served) -> None:
    agent = agent_of(proxy)
    await agent.run("What is 1 + 1?")  # a warm client: its first request also opens a connection
    quick, held = await asyncio.gather(agent.run("What is 12 + 30?"), agent.run("What is 12 + 30? [duration=40]"))
    await agent.client.close()  # type: ignore[union-attr]
    assert held.turns == quick.turns == 2  # one tool call, then the answer
    assert held.output_text == quick.output_text
    # As offline, [duration=40] is the whole conversation (2 s), not each of its two turns (which makes 4 s):
    # the first turn comes at its real latency, the final answer when 2 s have passed since the start.
    first, last = held.spans[0], held.spans[-1]
    assert first.kind == last.kind == "model"
    assert first.duration < 0.5 * 40 * SCALE
    assert held.duration >= 40 * SCALE and last.end - held.started_at >= 40 * SCALE


async def test_duration_never_shortens_real_latency(proxy: Served) -> None:
    client = client_of(proxy)
    start = time.perf_counter()
    await client.responses.create(model="gpt-5-mini", input="What is 1 + 1? [duration=0]")
    assert time.perf_counter() - start >= 0.35 * SCALE * 0.7  # the stand-in's own time, less its jitter
    await client.close()


@pytest.mark.parametrize(("prompt", "status"), [("[fault=500]", 500), ("[fault=429]", 429)])
async def test_a_fault_is_answered_without_calling_upstream(
    upstream: Served, proxy: Served, prompt: str, status: int
) -> None:
    before, client = len(upstream.received), client_of(proxy, retries=1)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.responses.create(model="gpt-5-mini", input=f"What is 1 + 1? {prompt}")
    await client.close()
    assert caught.value.status_code == status and "fault" in caught.value.message.lower()
    assert len(upstream.received) == before  # both attempts answered by the proxy itself
    if status == 429:
        assert caught.value.response.headers["retry-after-ms"] == str(round(1.0 * SCALE * 1000))
    faults = (await get_json(proxy.url + "/offline/stats"))["faults"]
    assert isinstance(faults, dict) and faults[prompt[7:10]] >= 2


async def test_429x1_fails_the_first_attempt_only_and_the_client_retry_reaches_upstream(
    upstream: Served, proxy: Served
) -> None:
    before, client = len(upstream.received), client_of(proxy)
    raw = await client.responses.with_raw_response.create(model="gpt-5-mini", input="What is 6 * 7? [fault=429x1]")
    await client.close()
    assert raw.retries_taken == 1 and raw.parse().output_text == "6 * 7 = 42."
    assert len(upstream.received) == before + 1


async def test_a_hang_lasts_until_the_client_gives_up(proxy: Served) -> None:
    agent = agent_of(proxy, retries=0, timeout=0.3)
    start = time.perf_counter()
    with pytest.raises(BackendError, match="did not answer in time"):
        await agent.run("What is 3 + 4? [fault=hang]")
    assert 0.3 <= time.perf_counter() - start < 3
    await agent.client.close()  # type: ignore[union-attr]


async def test_scripted_model_markers_are_a_clear_400_in_proxy_mode(upstream: Served, proxy: Served) -> None:
    before, agent = len(upstream.received), agent_of(proxy)
    for marker in ("[mistake=bad_json]", "[loop]"):
        with pytest.raises(BackendError, match=r"need the scripted model.*unset AGENTLAB_BACKEND") as caught:
            await agent.run(f"What is 1 + 1? {marker}")
        assert caught.value.status_code == 400
    assert len(upstream.received) == before
    await agent.client.close()  # type: ignore[union-attr]


async def test_models_are_forwarded(upstream: Served, proxy: Served) -> None:
    client = client_of(proxy)
    names = [m.id for m in (await client.models.list()).data]
    one = await client.models.retrieve("gpt-5-mini")
    with pytest.raises(openai.NotFoundError, match="does not exist offline"):  # upstream's own 404, unchanged
        await client.models.retrieve("gpt-0")
    await client.close()
    assert "gpt-5-mini" in names and one.id == "gpt-5-mini"
    assert {r.path for r in upstream.received} >= {"/v1/models", "/v1/models/gpt-5-mini", "/v1/models/gpt-0"}


async def test_a_batch_file_loses_the_markers_of_its_requests_and_nothing_else(upstream: Served, proxy: Served) -> None:
    before, client = len(upstream.received), client_of(proxy)
    agent = Agent(name="calculator", instructions="Use the tools. [fault=500]", tools=MATH_TOOLS)
    lines = [request_line(agent, "What is 2 + 3? [duration=5]", "req-0"), request_line(agent, "Hi", "req-1")]
    plain = request_line(Agent(name="plain", instructions="Be brief."), "What is 1 + 1?", "req-2")
    uploaded = await client.files.create(
        file=("in.jsonl", "\n".join([*lines, plain, "not json"]).encode()), purpose="batch"
    )
    stored = (await client.files.content(uploaded.id)).text.split("\n")
    await client.close()
    assert markers_in(upstream.received[before:]) == [] and len(upstream.received) > before
    bodies = [json.loads(line)["body"] for line in stored[:2]]
    assert [b["instructions"] for b in bodies] == ["Use the tools."] * 2 and bodies[0]["input"][0][
        "content"
    ] == "What is 2 + 3?"
    assert stored[2:] == [plain, "not json"]  # a line without markers, and one that is not JSON, as they came


async def test_a_stream_passes_through_with_its_markers_applied(upstream: Served, proxy: Served) -> None:
    agent = Agent(name="streamer", instructions="Answer.", client=client_of(proxy), stream=True)
    await agent.run("What is 1 + 1?")  # a warm client
    firsts: list[float] = []
    started = time.perf_counter()
    result = await agent.run(
        "What is 2 + 3? [duration=20]",
        on_event=lambda e: firsts.append(time.perf_counter()) if e.kind == "text_delta" else None,
    )
    assert result.output_text == "2 + 3 = 5." and firsts
    assert time.perf_counter() - started >= 20 * SCALE  # the final event waited for the duration
    assert firsts[0] - started < 0.5 * 20 * SCALE  # the text itself came at its real pace
    with pytest.raises(BackendError) as caught:
        await agent.run("What is 6 * 7? [fault=drop]")  # the stream breaks at its first delta
    assert "stream" in str(caught.value).lower()
    await agent.client.close()  # type: ignore[union-attr]
    assert markers_in(upstream.received) == []


def test_serve_upstream_runs_the_proxy_as_its_own_process(upstream: Served) -> None:
    before = len(upstream.received)
    with start_process(time_scale=SCALE, upstream=upstream.base_url) as proxy:
        answer = asyncio.run(ask(proxy.base_url, "What is 2 + 2? [duration=1]"))
    assert answer == "2 + 2 = 4." and len(upstream.received) == before + 1
    assert markers_in(upstream.received[before:]) == []
    refused = subprocess.run(
        [sys.executable, "-m", "agentlab", "serve", "--upstream", "api.openai.com"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "is not an http(s) URL" in refused.stderr


async def ask(base_url: str, prompt: str) -> str:
    async with AsyncOpenAI(base_url=base_url, api_key=FAKE_KEY) as client:
        return (await client.responses.create(model="gpt-5-mini", input=prompt)).output_text


async def test_the_openai_backend_talks_to_its_own_proxy_in_front_of_openai_base_url(
    upstream: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTLAB_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    before = len(upstream.received)
    with pytest.raises(ConfigurationError, match="needs an API key: set OPENAI_API_KEY"):
        make_client()
    assert len(upstream.received) == before  # refused before any request
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)

    result = await Agent(name="c", instructions="Use the tools.", tools=MATH_TOOLS).run("What is 6 * 7? [duration=1]")
    answer, base_url = result.output_text, str(default_client().base_url)
    assert answer == "6 * 7 = 42." and base_url == offline_server().base_url + "/"
    assert base_url.startswith("http://127.0.0.1:") and upstream.base_url not in base_url  # the proxy, not upstream
    assert markers_in(upstream.received[before:]) == [] and len(upstream.received) > before
    assert_key_only_in_authorization(upstream.received[before:])
    assert FAKE_KEY not in repr(make_client()) + repr(offline_server()) + repr(vars(offline_server()))
