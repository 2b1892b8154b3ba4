"""Rate limits on the offline server, answered the way the real API answers them.

``serve --rpm R --tpm T`` (or ``AGENTLAB_RPM`` / ``AGENTLAB_TPM``, or ``start(rpm=..., tpm=...)``) gives the
server two buckets, as the real API has: one of requests and one of tokens. Each holds at most its limit and
refills evenly over one "minute", which here is ``60 s × AGENTLAB_TIME_SCALE`` so that lessons and tests at a
small time scale meet the limit in seconds. The buckets, and the rule that counts a request's input tokens, are
``agentlab.bucket``'s: the same ones the client's ``Budget`` spends from.

- A request is let in when the request bucket holds one request and the token bucket holds its input tokens
  (the rule that ``usage.input_tokens`` reports). Its output tokens are taken once the answer is known; they
  may take the bucket below zero, and the requests after it wait until that debt has refilled.
- Every answer carries the real API's headers: ``x-ratelimit-limit-requests``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` and the same three for tokens. A reset
  is the time until the bucket is full again, written as the real API writes it (``"1s"``, ``"6m0s"``,
  ``"120ms"``: Go's duration format, to the millisecond).
- A request that does not fit is a ``429`` with ``Retry-After`` (whole seconds) and ``retry-after-ms`` (the
  precise wait, which the openai client reads first) and the real API's body: ``type`` ``"requests"`` or
  ``"tokens"``, ``code`` ``"rate_limit_exceeded"``, and a message that names the limit, what was used and
  requested, and when to try again. A refused request takes nothing from either bucket.
- One request with more input tokens than the whole limit can never fit: it is refused at once with the real
  API's "Request too large" message and ``x-should-retry: false``, so that no client waits for it forever.

No limit set (``rpm=None``, ``tpm=None``): no limiter, no headers, nothing changes.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from agentlab.bucket import Bucket

__all__ = [
    "LIMITER",
    "RateLimiter",
    "Refusal",
    "format_reset",
    "check_limit",
    "limits_from_env",
    "install_limiter",
    "parse_limit",
    "add_limit_arguments",
]

ORGANIZATION = "org-offline"


def format_reset(seconds: float) -> str:
    """A duration as the real API writes it (Go's format, to the millisecond, rounded up).

    ``0.12`` → ``"120ms"``, ``1`` → ``"1s"``, ``18.642`` → ``"18.642s"``, ``360`` → ``"6m0s"``,
    ``3723.5`` → ``"1h2m3.5s"``, ``0`` → ``"0s"``.
    """
    ms = max(0, math.ceil(round(seconds * 1000, 6)))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


def remaining(bucket: Bucket) -> int:
    """What the bucket holds, as the header says it: a whole number, never below zero."""
    return max(0, math.floor(bucket.level + 1e-9))


def used(bucket: Bucket) -> int:
    """What has been spent of the minute's limit (more than the limit while the bucket is in debt)."""
    return math.ceil(bucket.capacity - bucket.level - 1e-9)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused, and the ``429`` answer that says so."""

    kind: str  # "requests" or "tokens"
    limit: int
    used: int
    requested: int
    wait: float  # seconds until it would fit; math.inf when it never can

    def body(self, model: str) -> dict[str, object]:
        unit = "requests per min (RPM)" if self.kind == "requests" else "tokens per min (TPM)"
        where = f"for {model} in organization {ORGANIZATION} on {unit}"
        if math.isinf(self.wait):
            message = (
                f"Request too large {where}: Limit {self.limit}, Requested {self.requested}. "
                "The input or output tokens must be reduced in order to run successfully."
            )
        else:
            message = (
                f"Rate limit reached {where}: Limit {self.limit}, Used {self.used}, Requested {self.requested}. "
                f"Please try again in {format_reset(self.wait)}. Spread your requests over the minute, or read "
                "the x-ratelimit-* headers to pace them."
            )
        return {"error": {"message": message, "type": self.kind, "param": None, "code": "rate_limit_exceeded"}}

    def headers(self) -> dict[str, str]:
        if math.isinf(self.wait):
            return {"x-should-retry": "false"}
        return {
            "retry-after": str(max(1, math.ceil(self.wait))),
            "retry-after-ms": str(max(1, math.ceil(self.wait * 1000))),
        }


class RateLimiter:
    """Requests per minute and tokens per minute for one server; either limit may be ``None`` (no limit).

    ``clock`` is injected so that tests can move time by hand. The server runs on one event loop, so no lock
    is needed: nothing here awaits.
    """

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm, self.tpm = check_limit("rpm", rpm), check_limit("tpm", tpm)
        if not window > 0:
            raise ValueError(f"the window must be a number of seconds greater than 0, got {window!r}")
        self.window, self.clock = window, clock
        now = clock()
        self.requests, self.tokens = Bucket.full(self.rpm, window, now), Bucket.full(self.tpm, window, now)
        self.admitted = self.refused = self.spent_tokens = 0  # counters for /offline/stats

    def admit(self, input_tokens: int) -> Refusal | None:
        """Let one request in (take one request and its input tokens), or say why not."""
        refusal = self.check(input_tokens)
        self.refused += refusal is not None
        return refusal

    def check(self, input_tokens: int) -> Refusal | None:
        now = self.clock()
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.refill(now)
        requests, tokens = self.requests, self.tokens
        if requests is not None and requests.level < 1:
            return Refusal("requests", int(requests.capacity), used(requests), 1, requests.seconds_until(1))
        if tokens is not None:
            if input_tokens > tokens.capacity:
                return Refusal("tokens", int(tokens.capacity), used(tokens), input_tokens, math.inf)
            if tokens.level < input_tokens:
                wait = tokens.seconds_until(input_tokens)
                return Refusal("tokens", int(tokens.capacity), used(tokens), input_tokens, wait)
        if requests is not None:
            requests.take(1, now)
        if tokens is not None:
            tokens.take(input_tokens, now)
        self.admitted += 1
        self.spent_tokens += input_tokens
        return None

    def settle(self, output_tokens: int) -> None:
        """Take the output tokens of an answer, now that they are known (the bucket may go below zero)."""
        self.spent_tokens += max(0, output_tokens)
        if self.tokens is not None and output_tokens > 0:
            self.tokens.take(output_tokens, self.clock())

    def headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers for the state of the buckets now."""
        now = self.clock()
        headers: dict[str, str] = {}
        for name, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket is None:
                continue
            bucket.refill(now)
            headers[f"x-ratelimit-limit-{name}"] = str(int(bucket.capacity))
            headers[f"x-ratelimit-remaining-{name}"] = str(remaining(bucket))
            headers[f"x-ratelimit-reset-{name}"] = format_reset(bucket.seconds_until(bucket.capacity))
        return headers

    def snapshot(self) -> dict[str, object]:
        """What ``GET /offline/stats`` shows under ``"ratelimit"``: the limits, the window, and what was spent."""
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "window_seconds": self.window,
            "admitted": self.admitted,
            "refused": self.refused,
            "spent_tokens": self.spent_tokens,
            "clock": self.clock(),  # time.monotonic() of this machine, for charts of spending over time
            "headers": self.headers(),
        }


LIMITER = web.AppKey("limiter", RateLimiter)


def install_limiter(app: web.Application, rpm: int | None, tpm: int | None, window: float) -> None:
    """Give the app a limiter when a limit is set, and the ``x-ratelimit-*`` headers on every answer of
    ``POST /v1/responses`` (a 200, a 429, a 400 alike). No limit: nothing is installed, nothing changes."""
    if rpm is None and tpm is None:
        return
    limiter = app[LIMITER] = RateLimiter(rpm, tpm, window=window)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path == "/v1/responses":
            response.headers.update(limiter.headers())

    app.on_response_prepare.append(add_headers)


def check_limit(name: str, value: object) -> int | None:
    """``None`` (no limit) or a whole number of at least 1; anything else is a ValueError naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1 (or None for no limit), got {value!r}")
    return value


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """``serve --rpm R --tpm T``."""
    parser.add_argument(
        "--rpm", type=parse_limit, default=None, help="requests per minute (AGENTLAB_RPM); default none"
    )
    parser.add_argument("--tpm", type=parse_limit, default=None, help="tokens per minute (AGENTLAB_TPM); default none")


def parse_limit(text: str) -> int:
    """``serve --rpm 600``: a whole number of at least 1, or an argparse error that says so."""
    try:
        value = check_limit("the limit", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1 (for example 600)") from None
    assert value is not None
    return value


def limits_from_env(environ: Mapping[str, str] | None = None) -> tuple[int | None, int | None]:
    """``(rpm, tpm)`` from ``AGENTLAB_RPM`` and ``AGENTLAB_TPM``; unset or empty means no limit."""
    env = os.environ if environ is None else environ
    limits: list[int | None] = []
    for name in ("AGENTLAB_RPM", "AGENTLAB_TPM"):
        text = env.get(name, "").strip()
        try:
            limits.append(check_limit(name, int(text)) if text else None)
        except ValueError:
            raise ValueError(f"{name}={text!r} is not a whole number of at least 1: set it like {name}=600") from None
    return limits[0], limits[1]
