"""The Budget's bookkeeping with a clock that the test moves: reserve, settle, and what the headers say."""

from __future__ import annotations

import asyncio

import pytest

from agentlab.budget import Budget, RequestTooLarge
from agentlab.errors import ConfigurationError


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def headers(remaining_tokens: int, limit_tokens: int = 1000, reset: str = "1s") -> dict[str, str]:
    return {
        "x-ratelimit-limit-tokens": str(limit_tokens),
        "x-ratelimit-remaining-tokens": str(remaining_tokens),
        "x-ratelimit-reset-tokens": reset,
    }


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"requests_per_minute": -60}, "requests_per_minute"),
        ({"tokens_per_minute": "90000"}, "tokens_per_minute"),
        ({"tokens_per_minute": float("nan")}, "tokens_per_minute"),
        ({"tokens_per_minute": True}, "tokens_per_minute"),
        ({"minute": 0}, "minute"),
        ({"margin": 0.9}, "margin"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_numbers_are_a_configuration_error_naming_the_argument(arguments: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{named} must be"):
        Budget(**arguments)  # type: ignore[arg-type]


async def test_a_call_larger_than_the_whole_minute_fails_at_once() -> None:
    budget = Budget(tokens_per_minute=100, minute=60)
    with pytest.raises(RequestTooLarge, match="more than the whole budget of 100 tokens per minute"):
        await asyncio.wait_for(budget.reserve(input_tokens=500), timeout=1)


async def test_settling_gives_back_what_the_estimate_held_beyond_usage() -> None:
    clock = FakeClock()
    budget = Budget(requests_per_minute=10, tokens_per_minute=1000, minute=60, margin=0, start_full=True, clock=clock)
    reservation = await budget.reserve(input_tokens=100)
    assert reservation.tokens == 110 + 258  # the input with 10% headroom, and a first guess of the output
    assert budget.tokens is not None and budget.tokens.level == 1000 - 368
    budget.settle(reservation, used=150, headers={}, status=200)
    assert budget.tokens.level == 850
    assert budget.requests is not None and budget.requests.level == 9


async def test_the_first_call_goes_alone_until_the_server_has_answered() -> None:
    clock = FakeClock()
    budget = Budget(requests_per_minute=100, tokens_per_minute=100_000, minute=60, start_full=True, clock=clock)
    first = await budget.reserve(input_tokens=10)
    second = asyncio.create_task(budget.reserve(input_tokens=10))
    await asyncio.sleep(0.02)
    assert not second.done()
    budget.settle(first, used=12, headers={}, status=200)
    assert (await asyncio.wait_for(second, timeout=1)).tokens > 0


async def test_the_servers_remaining_brings_the_level_down_less_what_is_in_flight() -> None:
    clock = FakeClock()
    budget = Budget(tokens_per_minute=1000, minute=60, margin=0, start_full=True, clock=clock)
    first = await budget.reserve(input_tokens=10)
    budget.settle(first, used=20, headers=headers(remaining_tokens=980), status=200)
    in_flight = await budget.reserve(input_tokens=10)
    done = await budget.reserve(input_tokens=10)
    budget.settle(done, used=20, headers=headers(remaining_tokens=300), status=200)  # others spent the minute
    # the server has counted the input of the call in flight (sent long enough ago), not yet its output
    assert budget.tokens is not None and budget.tokens.level == 300 - (in_flight.tokens - in_flight.scaled_input)


async def test_a_call_sent_too_recently_to_have_reached_the_server_counts_whole() -> None:
    clock = FakeClock()
    budget = Budget(tokens_per_minute=10_000, minute=60, margin=0, start_full=True, clock=clock)
    first = await budget.reserve(input_tokens=10)
    clock.now += 0.8  # the fastest call takes 0.8 s: a call sent less than 0.2 s ago may not be there yet
    budget.settle(first, used=20, headers=headers(9800, 10_000), status=200)
    early = await budget.reserve(input_tokens=10)
    clock.now += 0.5
    late = await budget.reserve(input_tokens=10)
    clock.now += 0.05
    budget.settle(early, used=20, headers=headers(9000, 10_000), status=200)
    assert budget.tokens is not None and budget.tokens.level == 9000 - late.tokens  # its input too


async def test_limits_left_out_are_learned_from_the_headers() -> None:
    clock = FakeClock()
    budget = Budget(start_full=True, clock=clock)
    assert budget.tokens is None and budget.requests is None
    first = await budget.reserve(input_tokens=10)
    budget.settle(first, used=20, headers=headers(remaining_tokens=900, limit_tokens=5000), status=200)
    assert budget.tokens is not None and budget.tokens.capacity == 5000 and budget.tokens.level == 900
    assert budget.requests is None  # the server sent no request headers: no request limit


async def test_a_configured_limit_lower_than_the_servers_is_kept() -> None:
    budget = Budget(tokens_per_minute=800, minute=60, start_full=True, clock=FakeClock())
    first = await budget.reserve(input_tokens=10)
    budget.settle(first, used=20, headers=headers(remaining_tokens=4000, limit_tokens=5000), status=200)
    assert budget.tokens is not None and budget.tokens.capacity == 800


async def test_malformed_headers_are_ignored_and_the_configured_numbers_used() -> None:
    budget = Budget(tokens_per_minute=1000, minute=60, margin=0, start_full=True, clock=FakeClock())
    first = await budget.reserve(input_tokens=10)
    bad = {"x-ratelimit-limit-tokens": "many", "x-ratelimit-remaining-tokens": "-", "x-ratelimit-reset-tokens": "x"}
    budget.settle(first, used=20, headers=bad, status=200)
    assert budget.tokens is not None and budget.tokens.capacity == 1000 and budget.tokens.level == 980


async def test_no_numbers_and_no_headers_means_no_limit() -> None:
    budget = Budget(start_full=True, clock=FakeClock())
    first = await budget.reserve(input_tokens=10)
    budget.settle(first, used=20, headers={}, status=200)
    reservations = await asyncio.wait_for(asyncio.gather(*(budget.reserve(10) for _ in range(1000))), timeout=2)
    assert len(reservations) == 1000


async def test_the_minute_is_learned_from_the_headers() -> None:
    budget = Budget(tokens_per_minute=90_000, start_full=True, clock=FakeClock())  # the env says 3 s (time scale 0.05)
    first = await budget.reserve(input_tokens=10)
    budget.settle(first, used=20, headers=headers(45_000, 90_000, reset="500ms"), status=200)
    assert budget.minute == pytest.approx(1.0, rel=0.01)  # half the bucket refills in 0.5 s


async def test_waiting_for_the_minute_to_refill_takes_as_long_as_it_should() -> None:
    budget = Budget(requests_per_minute=20, minute=1.0, margin=0)  # one request every 50 ms, real clock
    first = await budget.reserve(input_tokens=1)
    budget.settle(first, used=2, headers={}, status=200)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(29):  # it starts empty: 29 more at 50 ms each
        budget.settle(await budget.reserve(input_tokens=1), used=2, headers={}, status=200)
    assert 1.2 <= loop.time() - started < 3.0


async def test_it_starts_empty_and_the_first_answer_sets_the_level_up_or_down() -> None:
    clock = FakeClock()
    budget = Budget(tokens_per_minute=1000, minute=60, margin=0, clock=clock)
    assert budget.tokens is not None and budget.tokens.level == 0  # another job may have spent the minute
    clock.now += 30  # half a minute: 500 tokens
    first = await asyncio.wait_for(budget.reserve(input_tokens=10), timeout=1)
    budget.settle(first, used=20, headers=headers(remaining_tokens=900), status=200)
    assert budget.tokens.level == 900  # up to what the server says it has left
    second = await budget.reserve(input_tokens=10)
    budget.settle(second, used=20, headers=headers(remaining_tokens=950), status=200)
    assert budget.tokens.level == 900 - second.tokens + second.tokens - 20  # after the first: only down
