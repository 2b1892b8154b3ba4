"""A rate-limit budget: spend the provider's requests and tokens per minute without a single 429.

Past a few dozen conversations, the limit met first is the provider's: requests and tokens per minute. A
``Budget`` is shared by every model call that goes through it (runners, batches at once, one process):

1. **Reserve** before each call: one request and the call's estimated tokens (its input, counted by the same
   rule the server uses, plus a guess of its output). If the budget does not hold them yet, the call waits
   its turn (first come, first served) until the minute has refilled enough.
2. **Settle** after the answer, against ``usage``: what the estimate held beyond what was used goes back.
3. **Listen to the server**: the ``x-ratelimit-*`` headers say the server's limits and what it has left.
   The budget takes its limits from them when none were given, learns the minute (the offline server's is
   ``60 s × AGENTLAB_TIME_SCALE``), and comes down to what the server has left, less what is in flight and a
   small margin: a budget that starts full would run ahead of a server whose minute is already partly spent.
4. **If a 429 comes anyway**, nothing is sent until ``Retry-After`` has passed, and the call is tried again
   *through the budget*. That is why calls under a budget use ``client.with_options(max_retries=0)``: the
   openai client's own retries would resend at once, outside the budget, and a short ``retry-after-ms``
   makes such retries snowball into a storm of 429s.

Why not aiolimiter or pyrate-limiter? Both take weights, but neither can give back part of one once taken
(no public way to return tokens) nor be lowered to what the server reports. Reserve-and-settle needs both,
so the bucket is our own: ``agentlab.limits.Bucket``, a few lines, tested on its own with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

import openai
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab.errors import AgentLabError, ConfigurationError
from agentlab.limits import (
    Bucket,
    BudgetStats,
    RateHeaders,
    Reservation,
    check_count,
    check_fraction,
    check_positive,
    estimate_input_tokens,
    offline_minute,
    parse_rate_headers,
    retry_after,
    retry_wait,
    should_retry,
)

__all__ = ["Budget", "BudgetStats", "RequestTooLarge", "Reservation", "budget_for_batch"]


class RequestTooLarge(AgentLabError, ValueError):
    """One call needs more tokens than the whole minute holds: it could never be sent, so it fails at once."""


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
        self.quiet_clients: WeakKeyDictionary[AsyncOpenAI, AsyncOpenAI] = WeakKeyDictionary()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock, self.changed = asyncio.Lock(), asyncio.Event()  # made again for each event loop

    def __repr__(self) -> str:
        rpm, tpm = (bucket.capacity if bucket else None for bucket in (self.requests, self.tokens))
        return f"Budget(requests_per_minute={rpm}, tokens_per_minute={tpm}, minute={self.minute:g} s)"

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
        if status:
            self.durations.append(now - reservation.sent_at)
        used = reservation.tokens if used is None else used
        if self.tokens is not None:
            self.tokens.give_back(reservation.tokens - used, now)
        if status == 429 and self.requests is not None:
            self.requests.give_back(1, now)  # a refused request took nothing from the server
        if status:  # an answer came (not a lost connection): hear what its headers say
            self.hear(parse_rate_headers(headers), now, first=not self.heard_server)
            self.heard_server = True
        self.stats.calls += 1
        self.stats.tokens += used
        self.stats.rate_limited += status == 429
        if self.stats.log is not None:
            self.stats.log.append((now, used, status))
        self.changed.set()  # wake the head of the queue: tokens may have come back

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
        if status == 429:  # nothing goes out until the server's Retry-After has passed
            self.paused_until = max(self.paused_until, self.clock() + (wait if wait is not None else 1.0))
        return wait

    def primitives(self) -> tuple[asyncio.Lock, asyncio.Event]:
        """The lock and the event of the running loop (made again if the budget moved to another loop)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.lock, self.changed = loop, asyncio.Lock(), asyncio.Event()
        return self.lock, self.changed

    # -- The whole call: reserve, send, settle; retry through the budget -------------------------------------

    async def create_response(self, client: AsyncOpenAI, *, stream: bool = False, **request: Any) -> Response:
        """``client.responses.create(**request)`` through the budget, with its retries."""
        if stream:
            raise ConfigurationError("a budget paces whole answers: use Agent(stream=False) under a budget")
        quiet = self.quiet_clients.get(client)
        if quiet is None:
            quiet = self.quiet_clients[client] = client.with_options(max_retries=0)

        def send(attempt: int) -> Awaitable[Any]:  # a retry says so, as the openai client's own retries do
            headers = {**(request.get("extra_headers") or {}), "x-stainless-retry-count": str(attempt)}
            return quiet.responses.with_raw_response.create(**{**request, "extra_headers": headers})

        return await self.call(send, estimate_input_tokens(request))

    async def call(self, send: Callable[[int], Awaitable[Any]], input_tokens: int) -> Response:
        """Send through the budget until an answer comes, or the retries are spent (then the error is raised)."""
        for attempt in range(self.max_retries + 1):
            reservation = await self.reserve(input_tokens)
            try:
                raw = await send(attempt)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                wait = self.refused(reservation, exc)
                if not should_retry(exc) or attempt == self.max_retries:
                    raise
                self.stats.retries += 1  # a 429 waits in the budget; other errors back off as the client would
                await asyncio.sleep(retry_wait(attempt, wait, getattr(exc, "status_code", 0)))
                continue
            except BaseException:  # cancelled (a timeout): the tokens may have been spent; keep them
                self.settle(reservation, reservation.input_tokens, {}, 0)
                raise
            response: Response = raw.parse()
            usage = response.usage
            if usage is not None:
                self.learn_usage(reservation, usage.input_tokens, usage.output_tokens)
            self.settle(reservation, usage.total_tokens if usage else None, raw.headers, 200)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")


def budget_for_batch(
    budget: Budget | None, requests_per_minute: float | None, tokens_per_minute: float | None, bounded: bool
) -> Budget | None:
    """The budget of one ``run_bounded`` call: the shared one, or one made from the numbers, or none."""
    if budget is not None and (requests_per_minute is not None or tokens_per_minute is not None):
        raise ConfigurationError(
            "pass either budget= (a Budget shared with other batches) or requests_per_minute=/tokens_per_minute=, "
            "not both: the numbers belong to the Budget, Budget(requests_per_minute=..., tokens_per_minute=...)"
        )
    if budget is not None and not isinstance(budget, Budget):
        raise ConfigurationError(f"budget must be an agentlab.Budget, got {type(budget).__name__}")
    if budget is None and (requests_per_minute is not None or tokens_per_minute is not None):
        budget = Budget(requests_per_minute, tokens_per_minute)
    if budget is None and not bounded:
        raise ConfigurationError(
            "run_bounded needs a bound: max_concurrency=k, or requests_per_minute=/tokens_per_minute=, or budget="
        )
    return budget
