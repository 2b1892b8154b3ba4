"""Contender (c) of the "budgets" section: the OpenAI cookbook's ``api_request_parallel_processor`` algorithm.

Written here from its description, for model calls inside agent conversations (the cookbook's script reads
requests from a JSONL file; the pacing is the same):

- Two buckets, requests and tokens, that **start full** and refill at the limit per minute, capped at it.
- Each request is charged one request and an **estimate** of its tokens: the prompt's tokens plus
  ``max_tokens × n`` for the completion (15 when the request names no ``max_tokens``). The estimate is
  **never refunded** nor corrected by what the answer used, and no rate-limit header is read.
- A request starts when both buckets hold its charge.
- After a rate-limit error, **no request starts for a fixed 15 s** (here a quarter of the scaled minute),
  whatever ``Retry-After`` says; the failed request is retried, up to 5 attempts in all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab.limits import estimate_input_tokens

__all__ = ["CookbookLimiter"]

COMPLETION_TOKENS = 15  # the cookbook's default max_tokens, when a request sets none
MAX_ATTEMPTS = 5
PAUSE_MINUTES = 15 / 60  # seconds_to_pause_after_rate_limit_error = 15, of a 60 s minute


class CookbookLimiter:
    """The cookbook's pacing, with the one method that ``Agent.run(budget=...)`` calls."""

    def __init__(self, requests_per_minute: float, tokens_per_minute: float, *, minute: float = 60.0) -> None:
        self.max_requests, self.max_tokens, self.minute = requests_per_minute, tokens_per_minute, minute
        self.requests, self.tokens = requests_per_minute, tokens_per_minute  # available capacity: starts full
        self.updated = time.monotonic()
        self.last_rate_limit_error = -1e9
        self.rate_limit_errors = 0
        self.lock = asyncio.Lock()

    async def create_response(self, client: AsyncOpenAI, *, stream: bool = False, **request: Any) -> Response:
        quiet = client.with_options(max_retries=0)
        consumption = estimate_input_tokens(request) + COMPLETION_TOKENS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await self.wait_for_capacity(consumption)
            try:
                response: Response = await quiet.responses.create(**request)
                return response
            except openai.RateLimitError:
                self.rate_limit_errors += 1
                self.last_rate_limit_error = time.monotonic()
                if attempt == MAX_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def wait_for_capacity(self, consumption: int) -> None:
        """Start when both buckets hold the charge, and never within the pause after a rate-limit error."""
        async with self.lock:
            while True:
                now = time.monotonic()
                self.refill(now)
                pause = self.last_rate_limit_error + PAUSE_MINUTES * self.minute - now
                if pause > 0:
                    await asyncio.sleep(pause)  # "pause to cool down"
                    continue
                if self.requests >= 1 and self.tokens >= consumption:
                    self.requests -= 1
                    self.tokens -= consumption  # charged for good: never refunded
                    return
                short = max((1 - self.requests) / self.max_requests, (consumption - self.tokens) / self.max_tokens)
                await asyncio.sleep(max(0.001, short * self.minute))

    def refill(self, now: float) -> None:
        elapsed, self.updated = now - self.updated, now
        self.requests = min(self.max_requests, self.requests + self.max_requests * elapsed / self.minute)
        self.tokens = min(self.max_tokens, self.tokens + self.max_tokens * elapsed / self.minute)
