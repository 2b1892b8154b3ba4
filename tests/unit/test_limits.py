"""The parts of a budget on their own: the bucket that gives back, and reading the server's headers."""

from __future__ import annotations

import pytest

from agentlab.limits import (
    Bucket,
    estimate_input_tokens,
    offline_minute,
    parse_duration,
    parse_rate_headers,
    retry_after,
)
from agentlab.offline.ratelimit import RateLimiter, format_reset
from agentlab.offline.tokens import input_tokens


def test_a_bucket_refills_over_its_minute_and_never_past_full() -> None:
    bucket = Bucket(600, 60, 600, updated=0.0)  # 10 per second
    bucket.take(500, now=0.0)
    assert bucket.level == 100
    assert bucket.seconds_until(300) == pytest.approx(20)
    bucket.refill(now=10.0)
    assert bucket.level == pytest.approx(200)
    bucket.refill(now=1000.0)
    assert bucket.level == 600


def test_a_bucket_gives_back_what_a_settled_reservation_did_not_use() -> None:
    bucket = Bucket(1000, 60, 1000, updated=0.0)
    bucket.take(400, now=0.0)  # an estimate of 400 tokens
    bucket.give_back(400 - 120, now=0.0)  # the answer used 120
    assert bucket.level == 880
    bucket.give_back(10_000, now=0.0)
    assert bucket.level == 1000  # never above full


def test_a_bucket_comes_down_to_the_server_but_never_up() -> None:
    bucket = Bucket(1000, 60, 1000, updated=0.0)
    bucket.lower_to(300, now=0.0)
    assert bucket.level == 300
    bucket.lower_to(900, now=0.0)
    assert bucket.level == 300
    bucket.lower_to(-50, now=0.0)  # less in flight than the server has left: a debt
    assert bucket.seconds_until(0) == pytest.approx(3.0)


def test_seconds_until_an_amount_larger_than_the_bucket_is_capped() -> None:
    bucket = Bucket(100, 60, 0, updated=0.0)
    assert bucket.seconds_until(150, cap=True) == pytest.approx(60)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("120ms", 0.12), ("1h2m3.5s", 3723.5), ("14h29m11.04s", 52151.04), ("2", 2.0)],
)
def test_durations_in_the_real_apis_format(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "1x", "-3s", "5m and 1s", "nan", "-1"])
def test_malformed_durations_are_none(text: str | None) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize("seconds", [0.001, 0.12, 1, 18.642, 59.999, 360, 3723.5])
def test_the_servers_resets_read_back(seconds: float) -> None:
    assert parse_duration(format_reset(seconds)) == pytest.approx(seconds, abs=1e-3)


def test_headers_read_and_the_minute_worked_out() -> None:
    clock = [0.0]
    limiter = RateLimiter(rpm=600, tpm=90_000, window=3.0, clock=lambda: clock[0])  # a scaled minute of 3 s
    for _ in range(10):
        limiter.admit(2_000)
    server = parse_rate_headers(limiter.headers())
    assert (server.limit_requests, server.remaining_requests) == (600, 590)
    assert (server.limit_tokens, server.remaining_tokens) == (90_000, 70_000)
    assert server.minute is not None and 3.0 <= server.minute < 3.01  # never short, a little long at most


def test_the_minute_is_not_guessed_from_too_little() -> None:
    headers = {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "990",
        "x-ratelimit-reset-tokens": "30ms",
    }
    assert parse_rate_headers(headers).minute is None


def test_missing_or_malformed_headers_are_ignored() -> None:
    assert parse_rate_headers({}) == parse_rate_headers({"x-ratelimit-limit-tokens": "lots"})
    server = parse_rate_headers(
        {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1", "x-ratelimit-reset-tokens": "0"}
    )
    assert server.limit_tokens is None and server.remaining_tokens is None  # Azure's "no limit" answer
    server = parse_rate_headers({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "61"})
    assert server.limit_requests is None


def test_retry_after_prefers_milliseconds_as_the_openai_client_does() -> None:
    assert retry_after({"retry-after-ms": "50", "retry-after": "1"}) == pytest.approx(0.05)
    assert retry_after({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "-4"}) is None
    assert retry_after({}) is None


def test_the_estimate_uses_the_servers_rule() -> None:
    tools = ({"type": "function", "name": "sum_numbers", "parameters": {"type": "object"}},)
    messages = [{"role": "user", "content": "What is 2 + 3? ünïcode"}]
    request = {"model": "gpt-5-mini", "instructions": "Do math.", "extra_body": {"input": messages, "tools": tools}}
    body = {"model": "gpt-5-mini", "instructions": "Do math.", "input": messages, "tools": list(tools)}
    assert estimate_input_tokens(request) == input_tokens(body)


def test_the_offline_minute_follows_the_time_scale() -> None:
    assert offline_minute({"AGENTLAB_TIME_SCALE": "0.05"}) == pytest.approx(3.0)
    assert offline_minute({}) == 60.0
    assert offline_minute({"AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_BACKEND": "openai"}) == 60.0
    assert offline_minute({"AGENTLAB_TIME_SCALE": "fast"}) == 60.0
