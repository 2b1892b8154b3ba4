"""The one bucket and the one token rule on their own, and how a budget reads (and clamps) the server's headers."""

from __future__ import annotations

import asyncio

import pytest

from agentlab.bucket import Bucket, input_tokens
from agentlab.budget import Budget, offline_minute, parse_duration, parse_rate_headers, retry_after
from agentlab.errors import ConfigurationError
from agentlab.offline.ratelimit import RateLimiter, format_reset


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


def test_the_token_rule_counts_what_the_model_reads_and_nothing_else() -> None:
    tools = [{"type": "function", "name": "sum_numbers", "parameters": {"type": "object"}}]
    body = {"instructions": "Do math.", "input": [{"role": "user", "content": "2 + 3? ünïcode"}], "tools": tools}
    text = (
        '["Do math.",[{"role":"user","content":"2 + 3? ünïcode"}],'
        + '[{"type":"function","name":"sum_numbers","parameters":{"type":"object"}}]]'
    )
    assert input_tokens(body) == -(-len(text) // 4)
    assert input_tokens({**body, "model": "gpt-5-mini", "metadata": {"x": "y" * 400}}) == input_tokens(body)
    assert input_tokens({**body, "tools": tuple(tools)}) == input_tokens(body)  # the Agent's tuple of schemas


def test_the_offline_minute_follows_the_time_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_TIME_SCALE", "0.05")
    monkeypatch.delenv("AGENTLAB_BACKEND", raising=False)
    assert offline_minute() == pytest.approx(3.0)
    monkeypatch.setenv("AGENTLAB_BACKEND", "openai")
    assert offline_minute() == 60.0
    monkeypatch.setenv("AGENTLAB_BACKEND", "offline")
    monkeypatch.setenv("AGENTLAB_TIME_SCALE", "fast")
    with pytest.raises(ConfigurationError, match="AGENTLAB_TIME_SCALE='fast'"):
        offline_minute()


# -- Absurd headers are clamped: one bad header never stops a batch or leaves its calls asleep --------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def answered(budget: Budget, headers: dict[str, str]) -> None:
    """One call through ``budget`` whose answer carries ``headers``."""
    reservation = await asyncio.wait_for(budget.reserve(input_tokens=10), timeout=1)
    budget.settle(reservation, used=20, headers=headers, status=200)


async def test_a_limit_of_400_digits_is_clamped_and_the_batch_goes_on() -> None:
    huge = "9" * 400
    server = parse_rate_headers({"x-ratelimit-limit-tokens": huge, "x-ratelimit-remaining-tokens": huge})
    assert server.limit_tokens == server.remaining_tokens == 10**12
    budget = Budget(start_full=True, minute=60, clock=FakeClock())
    await answered(budget, {"x-ratelimit-limit-tokens": huge, "x-ratelimit-remaining-tokens": huge})
    assert budget.tokens is not None and budget.tokens.capacity == 10**12
    await asyncio.wait_for(asyncio.gather(*(answered(budget, {}) for _ in range(100))), timeout=2)
    assert budget.stats.calls == 101


async def test_a_reset_of_nines_hours_is_clamped_and_no_minute_is_learned_from_it() -> None:
    reset = "9" * 400 + "h"
    headers = {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": reset,
    }
    server = parse_rate_headers(headers)
    assert server.reset_tokens == 86_400.0 and server.minute is None
    assert parse_duration("1e999") == 86_400.0 and retry_after({"retry-after": "1e999"}) == 86_400.0
    budget = Budget(tokens_per_minute=1000, minute=60, margin=0, start_full=True, clock=FakeClock())
    await answered(budget, headers)
    assert budget.minute == 60
    assert budget.seconds_until_fits(100) <= 60  # refills within the minute, as before


async def test_a_remaining_of_minus_a_million_is_read_as_nothing_left() -> None:
    headers = {"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "-1000000"}
    assert parse_rate_headers(headers).remaining_tokens == 0
    clock = FakeClock()
    budget = Budget(tokens_per_minute=1000, minute=60, margin=0, start_full=True, clock=clock)
    await answered(budget, headers)
    assert budget.tokens is not None and budget.tokens.level == 0
    assert budget.seconds_until_fits(500) == pytest.approx(30)  # half a minute for half the bucket, not years
    clock.now += 30
    await asyncio.wait_for(budget.reserve(input_tokens=10), timeout=1)


async def test_whatever_reading_the_headers_does_the_call_is_settled_and_the_queue_woken() -> None:
    class Exploding(dict[str, str]):
        def get(self, key: str, default: object = None) -> str:  # type: ignore[override]
            raise RuntimeError("a header from another world")

    budget = Budget(requests_per_minute=100, minute=60, start_full=True, clock=FakeClock())
    first = await budget.reserve(input_tokens=10)
    budget.changed.clear()
    with pytest.raises(RuntimeError):
        budget.settle(first, used=20, headers=Exploding(), status=200)
    assert budget.stats.calls == 1 and not budget.outstanding and budget.changed.is_set()
