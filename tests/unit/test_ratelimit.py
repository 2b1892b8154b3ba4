"""The offline server's rate limiter on its own, with a clock that the test moves by hand."""

from __future__ import annotations

import math

import pytest

from agentlab.offline.ratelimit import RateLimiter, format_reset, limits_from_env


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.12, "120ms"),
        (0.0004, "1ms"),
        (1, "1s"),
        (18.642, "18.642s"),
        (1.5, "1.5s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
        (52151.04, "14h29m11.04s"),
        (-3, "0s"),
    ],
)
def test_resets_are_written_like_the_real_api(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_requests_per_minute_refuse_the_one_too_many_then_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=3, tpm=None, window=60, clock=clock)
    assert [limiter.admit(10) for _ in range(3)] == [None, None, None]
    refusal = limiter.admit(10)
    assert refusal is not None and refusal.kind == "requests"
    assert refusal.wait == pytest.approx(20.0)  # one request refills every 60 / 3 s
    assert refusal.headers() == {"retry-after": "20", "retry-after-ms": "20000"}
    clock.advance(20)
    assert limiter.admit(10) is None


def test_a_refused_request_takes_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=2, tpm=100, window=60, clock=clock)
    assert limiter.admit(90) is None
    refusal = limiter.admit(50)
    assert refusal is not None and refusal.kind == "tokens"
    assert limiter.headers()["x-ratelimit-remaining-requests"] == "1"
    assert limiter.headers()["x-ratelimit-remaining-tokens"] == "10"


def test_tokens_count_input_then_output_and_the_debt_delays_the_next() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=600, window=60, clock=clock)  # 10 tokens per second
    assert limiter.admit(500) is None
    limiter.settle(200)  # the bucket is now at -100
    assert limiter.headers()["x-ratelimit-remaining-tokens"] == "0"
    refusal = limiter.admit(50)
    assert refusal is not None and refusal.kind == "tokens"
    assert refusal.wait == pytest.approx(15.0)  # 150 tokens at 10 per second
    assert refusal.used == 700 and refusal.requested == 50 and refusal.limit == 600
    clock.advance(15)
    assert limiter.admit(50) is None


def test_headers_say_limit_remaining_and_time_until_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=600, tpm=150000, window=60, clock=clock)
    limiter.admit(16)
    assert limiter.headers() == {
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "599",
        "x-ratelimit-reset-requests": "100ms",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "7ms",
    }
    clock.advance(1)
    assert limiter.headers()["x-ratelimit-reset-requests"] == "0s"


def test_the_window_is_the_scaled_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, window=3.0, clock=clock)  # AGENTLAB_TIME_SCALE=0.05
    for _ in range(60):
        assert limiter.admit(1) is None
    refusal = limiter.admit(1)
    assert refusal is not None and refusal.wait == pytest.approx(0.05)
    assert refusal.headers() == {"retry-after": "1", "retry-after-ms": "50"}
    assert limiter.headers()["x-ratelimit-reset-requests"] == "3s"


def test_a_request_larger_than_the_whole_limit_is_refused_for_good() -> None:
    limiter = RateLimiter(rpm=None, tpm=100, clock=FakeClock())
    refusal = limiter.admit(101)
    assert refusal is not None and math.isinf(refusal.wait)
    assert refusal.headers() == {"x-should-retry": "false"}
    message = refusal.body("gpt-5-mini")["error"]
    assert isinstance(message, dict) and message["message"].startswith("Request too large for gpt-5-mini")


def test_the_429_body_is_the_real_apis() -> None:
    limiter = RateLimiter(rpm=None, tpm=1000, clock=FakeClock())
    limiter.admit(990)
    refusal = limiter.admit(385)
    assert refusal is not None
    error = refusal.body("gpt-5-mini")["error"]
    assert isinstance(error, dict)
    assert error["type"] == "tokens" and error["code"] == "rate_limit_exceeded" and error["param"] is None
    assert error["message"].startswith(
        "Rate limit reached for gpt-5-mini in organization org-offline on tokens per min (TPM): "
        "Limit 1000, Used 990, Requested 385. Please try again in 22.5s."
    )


def test_no_limit_means_no_headers_and_no_refusal() -> None:
    limiter = RateLimiter(rpm=None, tpm=None, clock=FakeClock())
    assert all(limiter.admit(10**9) is None for _ in range(1000))
    assert limiter.headers() == {}


@pytest.mark.parametrize("bad", [0, -5, 1.5, "600", True])
def test_bad_limits_are_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="tpm must be a whole number"):
        RateLimiter(rpm=None, tpm=bad)  # type: ignore[arg-type]


def test_limits_from_the_environment() -> None:
    assert limits_from_env({}) == (None, None)
    assert limits_from_env({"AGENTLAB_RPM": "600", "AGENTLAB_TPM": " 90000 "}) == (600, 90000)
    with pytest.raises(ValueError, match="AGENTLAB_TPM='lots'"):
        limits_from_env({"AGENTLAB_TPM": "lots"})
    with pytest.raises(ValueError, match="AGENTLAB_RPM='0'"):
        limits_from_env({"AGENTLAB_RPM": "0"})
