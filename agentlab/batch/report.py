"""What a batched run costs, live against batched, and how its rounds went: the report of ``run_batched``.

Cost is tokens × price. A ``Price`` is dollars per million tokens, in and out; the Batch API takes
``batch_discount`` off (half, on OpenAI's price list). ``PRICES`` holds list prices for the models that the
offline server knows; pass your own table (``run_batched(..., prices={...})``) when they change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agentlab.records import BatchReport, Usage

__all__ = ["Price", "PRICES", "CostReport", "RoundTiming", "BatchedReport", "cost_of"]


@dataclass(frozen=True, slots=True)
class Price:
    """Dollars per million tokens, and the share that the Batch API takes off."""

    input_per_million: float
    output_per_million: float
    batch_discount: float = 0.5


# List prices in US dollars per million tokens (standard tier), as published by OpenAI for these models.
PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
}


@dataclass(frozen=True, slots=True)
class CostReport:
    """The same tokens priced twice: sent live, and sent through the Batch API."""

    model: str
    usage: Usage
    live: float  # dollars
    batched: float  # dollars

    @property
    def saved(self) -> float:
        return self.live - self.batched

    @property
    def discount(self) -> float:
        return self.saved / self.live if self.live else 0.0

    def __str__(self) -> str:
        return (
            f"${self.batched:.4f} batched against ${self.live:.4f} live (-{self.discount:.0%}; "
            f"{self.usage.input_tokens} in + {self.usage.output_tokens} out tokens of {self.model})"
        )


def cost_of(usage: Usage, model: str, prices: Mapping[str, Price] | None = None) -> CostReport | None:
    """Price ``usage`` for ``model``; None when the table has no price for it (nothing is guessed)."""
    price = (PRICES if prices is None else prices).get(model)
    if price is None:
        return None
    live = (usage.input_tokens * price.input_per_million + usage.output_tokens * price.output_per_million) / 1e6
    return CostReport(model, usage, live, live * (1 - price.batch_discount))


@dataclass(frozen=True, slots=True)
class RoundTiming:
    """One round: one batch holding the next turn of every conversation still open. Times from the start."""

    round: int
    batch_id: str
    requests: int
    submitted: float
    ended: float
    status: str
    completed: int = 0
    failed: int = 0

    @property
    def duration(self) -> float:
        return self.ended - self.submitted


@dataclass(frozen=True, slots=True, repr=False)
class BatchedReport(BatchReport):
    """A ``BatchReport`` (so tables and charts work) with the rounds of the run and its cost."""

    rounds: tuple[RoundTiming, ...] = ()
    cost: CostReport | None = None
    notes: tuple[str, ...] = ()  # what happened beyond the plan, e.g. a round sent again after a server restart

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = BatchReport.summary_rows(self)
        rows += [
            (f"round {r.round}", f"{r.requests} requests, {r.duration:.2f} s, {r.status} ({r.failed} failed)")
            for r in self.rounds
        ]
        rows.append(("cost", str(self.cost) if self.cost else "no price for this model: pass prices={...}"))
        rows += [("note", note) for note in self.notes]
        return rows
