"""Rate limits on the real offline server, seen through the real openai client."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from agentlab.budget import parse_duration, parse_rate_headers
from agentlab.offline import OfflineServer, config_from_env, start, start_process
from agentlab.offline.serve import add_serve_arguments, config_from_args

PROMPT = "What is 2 + 3?"


@pytest.fixture
def limited() -> Iterator[OfflineServer]:
    with start(rpm=5, tpm=10_000) as server:  # a minute of 3 s at AGENTLAB_TIME_SCALE=0.05
        yield server


def client_for(server: OfflineServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=0)


async def create_raw(client: AsyncOpenAI, prompt: str = PROMPT) -> Any:
    return await client.responses.with_raw_response.create(model="gpt-5-mini", input=prompt)


def stats(server: OfflineServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/offline/stats") as answer:
        result: dict[str, Any] = json.load(answer)
    return result


async def test_every_answer_carries_the_real_apis_headers(limited: OfflineServer) -> None:
    async def main() -> Any:
        async with client_for(limited) as client:
            return await create_raw(client, "What is 2 + 3? Say it in words. " * 40)

    started = time.monotonic()
    raw = await main()
    took = time.monotonic() - started
    response = raw.parse()
    server = parse_rate_headers(raw.headers)
    assert (server.limit_requests, server.limit_tokens) == (5, 10_000)
    assert server.remaining_requests == 4
    used = response.usage.input_tokens + response.usage.output_tokens
    assert used > 300
    assert server.remaining_tokens is not None
    refilled = 10_000 / (60 * float(os.environ["AGENTLAB_TIME_SCALE"])) * took  # at most, while it "thought"
    assert 10_000 - used <= server.remaining_tokens <= 10_000 - used + refilled
    assert server.remaining_tokens < 10_000  # the request's tokens were taken
    reset = parse_duration(raw.headers["x-ratelimit-reset-requests"])
    assert reset is not None and 0.4 < reset <= 0.6  # one request of 5 refills in 3 s / 5 = 0.6 s
    assert raw.headers["x-ratelimit-reset-tokens"].endswith("ms")


async def test_the_one_request_too_many_is_a_429_with_retry_after(limited: OfflineServer) -> None:
    async def main() -> openai.RateLimitError:
        async with client_for(limited) as client:
            for _ in range(5):
                await create_raw(client)
            with pytest.raises(openai.RateLimitError) as caught:
                await create_raw(client)
            return caught.value

    error = await main()
    assert error.status_code == 429
    assert error.body == {
        "message": error.body["message"],  # type: ignore[index]
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert "requests per min (RPM): Limit 5, Used 5, Requested 1. Please try again in" in error.message
    headers = error.response.headers
    assert 0 < int(headers["retry-after-ms"]) <= 600 and headers["retry-after"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert stats(limited)["statuses"]["429"] == 1


async def test_the_openai_clients_own_retry_waits_retry_after_and_gets_through(limited: OfflineServer) -> None:
    async with AsyncOpenAI(base_url=limited.base_url, api_key="offline", max_retries=2) as client:
        await asyncio.gather(*(create_raw(client, f"What is {i} + 1?") for i in range(6)))
    counters = stats(limited)
    assert counters["statuses"] == {"200": 6, "429": counters["statuses"]["429"]}
    assert counters["ratelimit"]["admitted"] == 6 and counters["ratelimit"]["refused"] >= 1


async def test_tokens_per_minute_refuse_with_type_tokens() -> None:
    with start(tpm=60) as server:  # a 2 + 3 question costs about 10 tokens with its answer

        async def main() -> openai.RateLimitError:
            async with client_for(server) as client:
                with pytest.raises(openai.RateLimitError) as caught:
                    for _ in range(20):
                        await create_raw(client)
                return caught.value

        error = await main()
    assert error.body["type"] == "tokens"  # type: ignore[index]
    assert "tokens per min (TPM): Limit 60" in error.message
    assert "x-ratelimit-limit-requests" not in error.response.headers  # no request limit was set


async def test_a_request_larger_than_the_minute_is_refused_for_good() -> None:
    with start(tpm=20) as server:

        async def main() -> openai.RateLimitError:
            async with AsyncOpenAI(base_url=server.base_url, api_key="offline", max_retries=3) as client:
                with pytest.raises(openai.RateLimitError) as caught:
                    await create_raw(client, "What is 2 + 3? " * 20)
                return caught.value

        error = await main()
        assert stats(server)["requests"] == 1  # x-should-retry: false, so the client did not resend it
    assert error.message.startswith("Error code: 429 - ") and "Request too large" in error.message


async def test_no_limit_means_no_headers() -> None:
    with start() as server:

        async def main() -> Any:
            async with client_for(server) as client:
                return await create_raw(client)

        raw = await main()
        assert "ratelimit" not in stats(server)
    assert not [name for name in raw.headers if name.startswith("x-ratelimit")]


def test_limits_from_the_environment_and_the_command_line() -> None:
    assert (config_from_env({"AGENTLAB_RPM": "60"}).rpm, config_from_env({}).tpm) == (60, None)
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    config = config_from_args(parser.parse_args(["--rpm", "600", "--tpm", "90000"]))
    assert (config.rpm, config.tpm) == (600, 90_000)
    with pytest.raises(SystemExit):
        parser.parse_args(["--tpm", "-5"])
    with pytest.raises(ValueError, match="rpm must be a whole number"):
        start(rpm=0)


async def test_serve_in_its_own_process_with_limits() -> None:
    with start_process(time_scale=0.05, rpm=7, tpm=5000) as server:

        async def main() -> Any:
            async with client_for(server) as client:
                return await create_raw(client)

        raw = await main()
    assert raw.headers["x-ratelimit-limit-requests"] == "7"
    assert raw.headers["x-ratelimit-limit-tokens"] == "5000"


def test_serve_refuses_a_bad_limit_on_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentlab", "serve", "--port", "0", "--rpm", "many"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "'many' is not a whole number of at least 1" in done.stderr
