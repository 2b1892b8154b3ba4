"""THE token bucket, and THE rule that counts a request's input tokens: one of each, for both sides of a limit.

The client's ``Budget`` (``agentlab.budget``) and the offline server's limits (``agentlab.offline.ratelimit``)
both spend from this ``Bucket`` and count with ``input_tokens``, so that the two sides agree by construction.
It sits at the bottom of the layers and imports nothing but the standard library: the offline server may
import it.

- ``Bucket`` holds at most ``capacity`` and refills evenly over one ``minute`` (in seconds). Unlike a plain
  token bucket it can **give back** part of what was taken (a reservation settled for less) and be **lowered**
  to what a server says it has left. Its level may go below zero: a debt that the refill pays off.
- ``input_tokens(body)``: real models count with a tokenizer; about four characters of English make one
  token. We use that rule of thumb on what the model reads, and on nothing else::

      input_tokens = max(1, ceil(len(compact JSON text of [instructions, input, tools]) / 4))

  The JSON keeps non-ASCII characters as they are, so a prompt of 400 letters costs about 100 tokens whatever
  else the body holds (metadata, model name and flags cost nothing). The real API counts with a tokenizer;
  the budget corrects its estimates by what ``usage`` reports.

Why our own bucket rather than aiolimiter or pyrate-limiter: both take weights, but neither can give back part
of one once taken, nor be lowered to what the server reports; reserve-and-settle needs both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Bucket", "CHARACTERS_PER_TOKEN", "input_tokens"]

CHARACTERS_PER_TOKEN = 4


def input_tokens(body: Mapping[str, Any]) -> int:
    """The tokens the model reads from a ``/v1/responses`` body: its instructions, input and tools."""
    read = [body.get("instructions"), body.get("input"), body.get("tools")]
    text = json.dumps(read, ensure_ascii=False, separators=(",", ":"), default=str)
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


@dataclass(slots=True)
class Bucket:
    """At most ``capacity``, refilled at ``capacity / minute`` per second; ``level`` is what it holds now."""

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
