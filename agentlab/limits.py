"""The small parts of a rate-limit budget: a bucket that can give back, and reading the server's headers.

- ``Bucket``: holds at most ``capacity`` and refills evenly over one ``minute``. Unlike a plain token bucket
  it can **give back** part of what was taken (a reservation settled for less) and be **lowered** to what the
  server says it has left. It may go below zero: a debt that the refill pays off.
- ``parse_rate_headers``: the real API's ``x-ratelimit-limit-*``, ``-remaining-*`` and ``-reset-*`` headers,
  with resets in Go's duration format (``"1s"``, ``"6m0s"``, ``"120ms"``). A header that is missing or does
  not parse is ignored. From limit, remaining and reset it also works out the length of the server's minute.
- ``retry_after``: ``retry-after-ms`` first, then ``Retry-After`` in seconds, as the openai client reads them.
- ``estimate_input_tokens``: the rule the offline server counts by (four characters of JSON per token).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openai import APIConnectionError, APIStatusError

from agentlab.errors import ConfigurationError

__all__ = [
    "Bucket",
    "BudgetStats",
    "Reservation",
    "RateHeaders",
    "parse_rate_headers",
    "parse_duration",
    "retry_after",
    "estimate_input_tokens",
    "offline_minute",
    "check_positive",
    "check_fraction",
    "check_count",
    "should_retry",
    "retry_wait",
]

DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
CHARACTERS_PER_TOKEN = 4  # the offline server's rule, offline/tokens.py
RETRYABLE = {408, 409, 429}  # and every 5xx, as the openai client retries them


@dataclass(slots=True)
class Bucket:
    capacity: float
    minute: float
    level: float
    updated: float

    @classmethod
    def full(cls, capacity: float | None, minute: float, now: float, *, empty: bool = False) -> Bucket | None:
        """A full bucket (or an empty one), or None when there is no limit."""
        return None if capacity is None else cls(capacity, minute, 0.0 if empty else capacity, now)

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / self.minute)
        self.updated = max(self.updated, now)

    def take(self, amount: float, now: float) -> None:
        self.refill(now)
        self.level -= amount

    def give_back(self, amount: float, now: float) -> None:
        self.refill(now)
        self.level = min(self.capacity, self.level + max(0.0, amount))

    def lower_to(self, level: float, now: float, *, exactly: bool = False) -> None:
        """Never hold more than ``level`` (what the server says it has left, less what is in flight);
        ``exactly``: hold just that, even if it is more (the first word from the server)."""
        self.refill(now)
        self.level = min(self.capacity, level) if exactly else min(self.level, level)

    def seconds_until(self, amount: float, *, cap: bool = False) -> float:
        """How long until the bucket holds ``amount`` (at most its capacity, with ``cap``); 0 if it does."""
        if cap:
            amount = min(amount, self.capacity)
        return max(0.0, (amount - self.level) * self.minute / self.capacity)


@dataclass(slots=True, eq=False)
class Reservation:
    """What one call holds from the budget until it is settled (compared by identity: each is one call)."""

    tokens: int  # the whole estimate: the input as the server counts it, and a guess of the output
    input_tokens: int  # the input by the budget's own count, before it learned the server's
    scaled_input: int = 0  # the input as the server is expected to count it
    sent_at: float = 0.0


@dataclass(slots=True)
class BudgetStats:
    """Counters for lessons and benchmarks. ``log`` holds ``(time, tokens, status)`` per answer."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0  # answers with status 429
    waited: float = 0.0  # seconds that calls spent waiting for the budget, summed
    tokens: int = 0
    log: deque[tuple[float, int, int]] | None = None


@dataclass(frozen=True, slots=True)
class RateHeaders:
    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None
    minute: float | None = None  # the server's minute in seconds, when the headers tell it precisely enough

    @property
    def remaining(self) -> tuple[int | None, int | None]:
        return self.remaining_requests, self.remaining_tokens


def parse_rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    """Read the ``x-ratelimit-*`` headers; what is missing or malformed comes back as None."""
    values: dict[str, Any] = {}
    for kind in ("requests", "tokens"):
        limit = parse_count(headers.get(f"x-ratelimit-limit-{kind}"))
        remaining = parse_count(headers.get(f"x-ratelimit-remaining-{kind}"))
        if limit is not None and (limit < 1 or (remaining is not None and remaining > limit)):
            limit = remaining = None  # e.g. Azure's -1: no usable limit
        values[f"limit_{kind}"], values[f"remaining_{kind}"] = limit, remaining
        values[f"reset_{kind}"] = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
    return RateHeaders(**values, minute=minute_from(values))


def minute_from(values: Mapping[str, Any]) -> float | None:
    """The server's minute: the reset is the time to refill ``limit - remaining``, so minute = reset × limit / that.

    Only when that is precise: at least 50 used (the count is whole, the reset is to the millisecond), and
    worked out so that it can only come out a little long, never short (a short minute would overspend).
    """
    best: tuple[float, float] | None = None
    for kind in ("tokens", "requests"):
        limit, remaining, reset = values[f"limit_{kind}"], values[f"remaining_{kind}"], values[f"reset_{kind}"]
        if limit is None or remaining is None or reset is None:
            continue
        used = limit - remaining - 1  # remaining is rounded down, so at least this much is in use
        if used >= 50 and reset >= 0.02 and (best is None or used / limit > best[0]):
            best = (used / limit, reset * limit / used)
    return None if best is None else best[1]


def parse_count(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def parse_duration(text: str | None) -> float | None:
    """``"6m0s"`` → 360.0, ``"120ms"`` → 0.12, ``"1h2m3.5s"`` → 3723.5, ``"2"`` → 2.0; anything else → None."""
    if text is None:
        return None
    text = text.strip()
    try:
        seconds = float(text)  # a bare number of seconds, as some providers send
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    parts = list(DURATION_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        return None
    return sum(float(p.group(1)) * UNIT_SECONDS[p.group(2)] for p in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or else ``Retry-After``; None when neither is usable."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        text = headers.get(name)
        if text is None:
            continue
        try:
            seconds = float(text) * scale
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """The input tokens of a ``responses.create`` call by the offline server's rule (``offline/tokens.py``):
    the compact JSON text of ``[instructions, input, tools]``, four characters per token, rounded up.

    The real API counts with a tokenizer; the budget corrects its estimates by what ``usage`` reports.
    """
    body = {**request, **(request.get("extra_body") or {})}
    read = [body.get("instructions"), body.get("input"), body.get("tools")]
    text = json.dumps(read, default=list_or_str, ensure_ascii=False, separators=(",", ":"))
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


def list_or_str(value: object) -> object:
    """Tuples of tools are JSON arrays; anything else that JSON does not know, its text."""
    return list(value) if isinstance(value, (tuple, set)) else str(value)


def offline_minute(environ: Mapping[str, str] | None = None) -> float:
    """60 s for the real API; ``60 × AGENTLAB_TIME_SCALE`` for the offline server (the default backend)."""
    env = os.environ if environ is None else environ
    if env.get("AGENTLAB_BACKEND", "offline").strip().lower() == "openai":
        return 60.0
    try:
        scale = float(env.get("AGENTLAB_TIME_SCALE", "1") or 1)
    except ValueError:
        return 60.0
    return 60.0 * scale if math.isfinite(scale) and scale > 0 else 60.0


def check_positive(name: str, value: float | None) -> float | None:
    """``None``, or a number greater than 0; anything else is a ConfigurationError naming the argument."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a number greater than 0 (or None), got {value!r}")
    return float(value)


def check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 0.5:
        raise ConfigurationError(f"{name} must be a share of the limit from 0 to 0.5, such as 0.02, got {value!r}")
    return float(value)


def check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a whole number of at least 0, got {value!r}")
    return value


def should_retry(exc: APIStatusError | APIConnectionError) -> bool:
    """Retry what the openai client retries (lost connections, 408, 409, 429, 5xx), unless the server says not to."""
    if not isinstance(exc, APIStatusError):
        return True
    if exc.response.headers.get("x-should-retry") == "false":
        return False
    return exc.status_code in RETRYABLE or exc.status_code >= 500


def retry_wait(attempt: int, wait: float | None, status: int) -> float:
    """After a 429, 0: the budget is paused until Retry-After. Else Retry-After, or the openai client's backoff."""
    if status == 429:
        return 0.0
    if wait is None or not 0 < wait <= 120:
        wait = min(0.5 * 2.0**attempt, 8.0) * (1 - 0.25 * random.random())
    return wait
