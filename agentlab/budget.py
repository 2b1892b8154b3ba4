"""A rate-limit budget: spend the provider's requests and tokens per minute without a single 429.

Past a few dozen conversations, the limit met first is the provider's: requests and tokens per minute. A
``Budget`` is shared by every model call that goes through it (runners, batches at once, one process):

1. **Reserve** before each call: one request and the call's estimated tokens (its input, counted by the same
   rule the server uses, ``agentlab.bucket.input_tokens``, plus a guess of its output). If the budget does not
   hold them yet, the call waits its turn (first come, first served) until the minute has refilled enough.
2. **Settle** after the answer, against ``usage``: what the estimate held beyond what was used goes back.
3. **Listen to the server**: the ``x-ratelimit-*`` headers say the server's limits and what it has left.
   The budget takes its limits from them when none were given, learns the minute (the offline server's is
   ``60 s × AGENTLAB_TIME_SCALE``), and comes down to what the server has left, less what is in flight and a
   small margin: a budget that starts full would run ahead of a server whose minute is already partly spent.
   Headers are the server's word, not ours: one that does not parse is ignored, and absurd values are clamped
   (a limit above ``MAX_COUNT``, a reset above a day, a negative remaining), so that no header can stop a batch
   or leave its calls asleep.
4. **If a 429 comes anyway**, nothing is sent until ``Retry-After`` has passed (at most a minute), and the call
   is tried again *through the budget*. That is the one retry loop of our own (design §6: retries belong to the
   openai client, except under a budget): the client's own retries would resend at once, outside the budget,
   and a short ``retry-after-ms`` makes such retries snowball into a storm of 429s. So under a budget the
   client does not retry (``max_retries=0``, see ``agentlab.model``).

**The contract of a budget.** ``agentlab.model.call_model`` wraps every model call, plain or streamed, in
``await budget.call(send, input_tokens)``. ``Budget`` is one such object; the Dask ``SharedBudget`` of
``agentlab.cluster`` is another; anything with this method will do (``agentlab.model.RateBudget``)::

    async def call(self, send: Send, input_tokens: int) -> Response

- ``send(attempt)`` makes one attempt of the call and returns ``(response, headers)``: the parsed ``Response``
  and the HTTP headers of its answer (with the ``x-ratelimit-*`` ones). ``attempt`` is 0, then 1, 2 … for
  retries (sent as ``x-stainless-retry-count``). It raises the openai client's ``APIStatusError`` (a 429 or a
  500, with its answer's headers) or ``APIConnectionError`` untranslated, and the client under it does not
  retry. Any other exception (a stream broken mid-way is a ``BackendError``; a cancellation) is not retried.
- ``input_tokens`` is the request's input by ``agentlab.bucket.input_tokens``: what to reserve.
- ``call`` returns the ``Response`` of the attempt that succeeded, or raises the last attempt's error (the
  caller translates it). It may call ``send`` several times, each after waiting for its share.

The bucket is ``agentlab.bucket.Bucket``, the one the offline server spends from too.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.responses import Response

from agentlab import settings
from agentlab.bucket import Bucket
from agentlab.errors import AgentLabError, ConfigurationError
from agentlab.model import RateBudget, Send

__all__ = ["Budget", "BudgetStats", "RequestTooLarge", "Reservation", "budget_for_batch", "offline_minute"]

DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
RETRYABLE = {408, 409, 429}  # and every 5xx, as the openai client retries them
MAX_COUNT = 10**12  # a limit or a remaining above this is read as this: more than any minute can spend
MAX_SECONDS = 86_400.0  # a reset or a Retry-After above a day is read as a day (the longest limit is per day)
MINUTES = (1e-3, 3600.0)  # a minute worked out from the headers outside these bounds is not believed


class RequestTooLarge(AgentLabError, ValueError):
    """One call needs more tokens than the whole minute holds: it could never be sent, so it fails at once."""


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


class Budget:
    """Requests and tokens per minute, shared by the calls of one process. Both numbers are optional.

    ``minute`` is the length of the provider's minute in seconds: 60 for the real API; by default the
    offline server's (``60 × AGENTLAB_TIME_SCALE``), then learned from the headers. ``margin`` is the share
    of each limit kept unspent. It starts empty (``start_full=True``: a key nobody else spends) until the
    first answer's headers say what the server has left. A budget belongs to one event loop at a time.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        minute: float | None = None,
        margin: float = 0.02,
        max_retries: int = 8,
        start_full: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests_per_minute = check_positive("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = check_positive("tokens_per_minute", tokens_per_minute)
        self.margin = check_fraction("margin", margin)
        self.max_retries = check_count("max_retries", max_retries)
        self.learn_minute = minute is None
        self.minute = check_positive("minute", minute) or offline_minute()
        self.clock = clock
        now = clock()
        # Empty until the first answer says what is left: another job may have spent this minute already.
        self.requests = Bucket.full(self.requests_per_minute, self.minute, now, empty=not start_full)
        self.tokens = Bucket.full(self.tokens_per_minute, self.minute, now, empty=not start_full)
        self.paused_until = 0.0
        self.heard_server = self.heard_minute = False
        self.outstanding: set[Reservation] = set()  # sent, not yet answered
        self.durations: deque[float] = deque(maxlen=32)  # of recent calls: the fastest bounds the round trip
        self.input_ratio = 1.1  # server's input tokens per estimated token, learned from usage
        self.outputs: deque[int] = deque(maxlen=64)  # recent output sizes: the next output's guess
        self.stats = BudgetStats(log=deque(maxlen=100_000))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock, self.changed = asyncio.Lock(), asyncio.Event()  # made again for each event loop

    def __repr__(self) -> str:
        rpm, tpm = (bucket.capacity if bucket else None for bucket in (self.requests, self.tokens))
        return f"Budget(requests_per_minute={rpm}, tokens_per_minute={tpm}, minute={self.minute:g} s)"

    # -- The whole call: reserve, send, settle; retry through the budget -------------------------------------

    async def call(self, send: Send, input_tokens: int) -> Response:
        """Send through the budget until an answer comes, or the retries are spent (then the error is raised)."""
        for attempt in range(self.max_retries + 1):
            reservation = await self.reserve(input_tokens)
            try:
                response, headers = await send(attempt)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                wait = self.refused(reservation, exc)
                if not should_retry(exc) or attempt == self.max_retries:
                    raise
                self.stats.retries += 1  # a 429 waits in the budget; other errors back off as the client would
                await asyncio.sleep(retry_wait(attempt, wait, getattr(exc, "status_code", 0)))
                continue
            except BaseException:  # cancelled (a timeout), or a stream broken mid-way: the tokens may be spent
                self.settle(reservation, reservation.input_tokens, {}, 0)
                raise
            usage = response.usage
            if usage is not None:
                self.learn_usage(reservation, usage.input_tokens, usage.output_tokens)
            self.settle(reservation, usage.total_tokens if usage else None, headers, 200)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- 1. Reserve ------------------------------------------------------------------------------------------

    async def reserve(self, input_tokens: int) -> Reservation:
        """Wait until the budget holds one request and the estimate, then take them."""
        lock, changed = self.primitives()
        started = self.clock()
        async with lock:  # one waiter at the head, the others queue behind it in order
            while True:
                estimate = self.estimate(input_tokens)
                wait = self.seconds_until_fits(estimate)
                if wait <= 0:
                    break
                changed.clear()  # an answer that gives tokens back wakes the head early
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if math.isinf(wait) else wait):
                        await changed.wait()
            now = self.clock()
            for bucket, amount in ((self.requests, 1), (self.tokens, estimate)):
                if bucket is not None:
                    bucket.take(amount, now)
            reservation = Reservation(estimate, input_tokens, self.scaled(input_tokens), now)
            self.outstanding.add(reservation)
        self.stats.waited += now - started
        return reservation

    def estimate(self, input_tokens: int) -> int:
        """Input tokens (scaled by what the server has counted so far) plus the largest recent output."""
        scaled_input = self.scaled(input_tokens)
        estimate = scaled_input + math.ceil(1.2 * max(self.outputs, default=213)) + 2  # outputs vary: headroom
        if self.tokens is not None:
            if scaled_input > self.tokens.capacity:
                raise RequestTooLarge(
                    f"this call's input alone is about {scaled_input} tokens, more "
                    f"than the whole budget of {self.tokens.capacity:g} tokens per minute, so it could never be "
                    "sent: shorten the conversation (fewer turns or smaller tool outputs) or raise tokens_per_minute"
                )
            estimate = min(estimate, math.floor(self.tokens.capacity))
        return estimate

    def scaled(self, input_tokens: int) -> int:
        return math.ceil(round(input_tokens * self.input_ratio, 6))

    def unseen(self, now: float) -> tuple[int, int]:
        """Requests and tokens in flight that the server's headers do not count yet: the outputs of every call
        in flight, and the whole of those sent too recently to have reached it (a quarter of the fastest call)."""
        recent = now - min(self.durations, default=math.inf) / 4
        young = [r for r in self.outstanding if r.sent_at > recent]
        return len(young), sum(r.tokens - r.scaled_input for r in self.outstanding) + sum(r.scaled_input for r in young)

    def seconds_until_fits(self, estimate: int) -> float:
        """0 when the call may go now; otherwise how long to wait (math.inf: until an answer comes)."""
        now = self.clock()
        if not self.heard_server and self.outstanding:
            return math.inf  # the first call goes alone: its headers tell how much the server has left
        wait = self.paused_until - now
        for bucket, amount in ((self.requests, 1), (self.tokens, estimate)):
            if bucket is not None:
                bucket.refill(now)
                wait = max(wait, bucket.seconds_until(amount + self.margin * bucket.capacity, cap=True))
        return wait

    # -- 2. Settle, and 3. listen to the server --------------------------------------------------------------

    def settle(self, reservation: Reservation, used: int | None, headers: Mapping[str, str], status: int) -> None:
        """The answer has come: give back what the estimate held beyond ``used``; hear the headers."""
        now = self.clock()
        self.outstanding.discard(reservation)
        used = reservation.tokens if used is None else used
        try:
            if status:
                self.durations.append(now - reservation.sent_at)
            if self.tokens is not None:
                self.tokens.give_back(reservation.tokens - used, now)
            if status == 429 and self.requests is not None:
                self.requests.give_back(1, now)  # a refused request took nothing from the server
            if status:  # an answer came (not a lost connection): hear what its headers say
                self.hear(parse_rate_headers(headers), now, first=not self.heard_server)
                self.heard_server = True
        finally:  # whatever the headers held, the books are kept and the head of the queue wakes
            self.stats.calls += 1
            self.stats.tokens += used
            self.stats.rate_limited += status == 429
            if self.stats.log is not None:
                self.stats.log.append((now, used, status))
            self.changed.set()  # tokens may have come back

    def hear(self, server: RateHeaders, now: float, first: bool = False) -> None:
        """Take limits and the minute from the headers, and come down to what the server has left."""
        if self.learn_minute and server.minute is not None:
            self.minute = min(server.minute, self.minute if self.heard_minute else math.inf)
            self.heard_minute = True  # each reading can only be a little long: the shortest is the closest
        self.requests = self.adopt(self.requests, self.requests_per_minute, server.limit_requests, now)
        self.tokens = self.adopt(self.tokens, self.tokens_per_minute, server.limit_tokens, now)
        for bucket, remaining, in_flight in zip(
            (self.requests, self.tokens), server.remaining, self.unseen(now), strict=True
        ):
            if bucket is not None and remaining is not None:
                bucket.lower_to(remaining - in_flight, now, exactly=first)  # the first answer: up or down

    def adopt(self, bucket: Bucket | None, configured: float | None, limit: int | None, now: float) -> Bucket | None:
        """The server's limit (or the configured one, if lower), over the minute as learned so far."""
        if limit is not None:
            capacity = min(float(limit), configured or math.inf)
            bucket = bucket or Bucket(capacity, self.minute, capacity, now)
            bucket.refill(now)
            bucket.capacity, bucket.level = capacity, min(bucket.level, capacity)
        if bucket is not None:
            bucket.refill(now)  # the time so far refills at the old pace
            bucket.minute = self.minute
        return bucket

    def learn_usage(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> None:
        """Keep the estimate honest: the server's count of the input, and the size of recent outputs."""
        if reservation.input_tokens > 0:
            ratio = input_tokens / reservation.input_tokens
            self.input_ratio = max(ratio, 0.9 * self.input_ratio + 0.1 * ratio)
        self.outputs.append(output_tokens)

    def refused(self, reservation: Reservation, exc: openai.APIError) -> float | None:
        """A 4xx/5xx answer or a lost connection: settle it; how long the server asks to wait, if it says."""
        status, headers = (exc.status_code, exc.response.headers) if isinstance(exc, openai.APIStatusError) else (0, {})
        self.settle(reservation, 0 if status == 429 else reservation.input_tokens, headers, status)
        wait = retry_after(headers)
        if status == 429:  # nothing goes out until the server's Retry-After has passed (a minute at most)
            pause = min(wait if wait is not None else 1.0, self.minute)
            self.paused_until = max(self.paused_until, self.clock() + pause)
        return wait

    def primitives(self) -> tuple[asyncio.Lock, asyncio.Event]:
        """The lock and the event of the running loop (made again if the budget moved to another loop)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.lock, self.changed = loop, asyncio.Lock(), asyncio.Event()
        return self.lock, self.changed


def budget_for_batch(
    budget: RateBudget | None, requests_per_minute: float | None, tokens_per_minute: float | None, bounded: bool
) -> RateBudget | None:
    """The budget of one ``run_bounded`` call: the one given, or one made from the numbers, or none.

    ``requests_per_minute=R, tokens_per_minute=T`` is shorthand for ``budget=Budget(R, T)``: one budget for this
    batch alone. Pass ``budget=`` to share one budget between batches (or a Dask ``SharedBudget`` between
    processes).
    """
    if budget is not None and (requests_per_minute is not None or tokens_per_minute is not None):
        raise ConfigurationError(
            "pass either budget= (a Budget shared with other batches) or requests_per_minute=/tokens_per_minute=, "
            "not both: the numbers belong to the Budget, Budget(requests_per_minute=..., tokens_per_minute=...)"
        )
    if budget is not None and not callable(getattr(budget, "call", None)):
        raise ConfigurationError(
            f"budget must be an agentlab.Budget (or an object with async call(send, input_tokens)), "
            f"got {type(budget).__name__}"
        )
    if budget is None and (requests_per_minute is not None or tokens_per_minute is not None):
        budget = Budget(requests_per_minute, tokens_per_minute)
    if budget is None and not bounded:
        raise ConfigurationError(
            "run_bounded needs a bound: max_concurrency=k, or requests_per_minute=/tokens_per_minute=, or budget="
        )
    return budget


def offline_minute() -> float:
    """60 s for the real API; ``60 × AGENTLAB_TIME_SCALE`` for the offline server (the default backend)."""
    return 60.0 if settings.backend() == "openai" else 60.0 * settings.time_scale()


# -- Reading the server's headers -------------------------------------------------------------------------------


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
    """Read the ``x-ratelimit-*`` headers; what is missing or malformed comes back as None, what is absurd is
    clamped (a count to ``MAX_COUNT``, a remaining below zero to zero, a reset to ``MAX_SECONDS``)."""
    values: dict[str, Any] = {}
    for kind in ("requests", "tokens"):
        limit = parse_count(headers.get(f"x-ratelimit-limit-{kind}"))
        remaining = parse_count(headers.get(f"x-ratelimit-remaining-{kind}"))
        if remaining is not None and (limit is None or limit >= 1):
            remaining = max(0, remaining)  # nothing left is the least a server can have left
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
    if best is None or not MINUTES[0] <= best[1] <= MINUTES[1]:
        return None
    return best[1]


def parse_count(text: str | None) -> int | None:
    """A whole number, at most ``MAX_COUNT``; None when it does not parse (or has over 4300 digits)."""
    try:
        return min(int(text.strip()), MAX_COUNT) if text is not None else None
    except ValueError:
        return None


def parse_duration(text: str | None) -> float | None:
    """``"6m0s"`` → 360.0, ``"120ms"`` → 0.12, ``"1h2m3.5s"`` → 3723.5, ``"2"`` → 2.0; anything else → None."""
    if text is None:
        return None
    text = text.strip()
    try:
        seconds = float(text)  # a bare number of seconds, as some providers send
        return min(seconds, MAX_SECONDS) if seconds >= 0 else None  # NaN and negatives: None
    except ValueError:
        pass
    parts = list(DURATION_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        return None
    return min(sum(float(p.group(1)) * UNIT_SECONDS[p.group(2)] for p in parts), MAX_SECONDS)


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
        if seconds >= 0:  # NaN and negatives are skipped
            return min(seconds, MAX_SECONDS)
    return None


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


def should_retry(exc: openai.APIStatusError | openai.APIConnectionError) -> bool:
    """Retry what the openai client retries (lost connections, 408, 409, 429, 5xx), unless the server says not to."""
    if not isinstance(exc, openai.APIStatusError):
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
