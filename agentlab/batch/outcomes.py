"""From the saved state of a finished run to what every runner returns: ``Batch[Outcome]`` with a report.

The state keeps Unix times (they survive a restart); results and reports use ``time.perf_counter()`` like the
other runners, so the times are moved onto that clock here, once, at the end.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal

from agentlab.agent import Agent
from agentlab.batch.report import BatchedReport, Price, RoundTiming, cost_of
from agentlab.batch.state import Conversation, RunState
from agentlab.errors import BackendError, MaxTurnsExceeded
from agentlab.records import Batch, ConversationTiming, Fulfilled, Outcome, Rejected, RunResult, Span, Usage

__all__ = ["build_batch"]


def build_batch(agent: Agent, state: RunState, prices: Mapping[str, Price] | None) -> Batch[Outcome]:
    """The outcomes in input order, and a ``BatchedReport`` with the rounds and the cost."""
    now = time.time()
    offset = time.perf_counter() - now  # Unix time + offset = perf_counter time
    outcomes = [outcome_of(agent, conv, state.started, offset) for conv in state.conversations]
    timings = tuple(timing_of(i, conv, state.started) for i, conv in enumerate(state.conversations))
    rounds = tuple(
        RoundTiming(
            r["round"],
            r["batch_id"],
            r["requests"],
            r["submitted"] - state.started,
            r["ended"] - state.started,
            r["status"],
            r["completed"],
            r["failed"],
        )
        for r in state.rounds
    )
    usage = sum((Usage(*conv.usage) for conv in state.conversations), Usage())
    report = BatchedReport("run_batched", now - state.started, timings, rounds, cost_of(usage, agent.model, prices))
    return Batch(outcomes, report)


def outcome_of(agent: Agent, conv: Conversation, started: float, offset: float) -> Outcome:
    if conv.status == "answered":
        spans = tuple(Span(kind, name, start + offset, end + offset) for kind, name, start, end in conv.spans)
        ended = (conv.ended or started) + offset
        usage = Usage(*conv.usage)
        return Fulfilled(RunResult(conv.output_text, conv.messages, spans, usage, conv.turns, started + offset, ended))
    if conv.error_kind == "max_turns":
        return Rejected(MaxTurnsExceeded(agent.max_turns, conv.messages))
    return Rejected(BackendError(conv.error or "the conversation did not finish"))


def timing_of(index: int, conv: Conversation, started: float) -> ConversationTiming:
    spans = tuple(Span(kind, name, start - started, end - started) for kind, name, start, end in conv.spans)
    end = (conv.ended or started) - started
    status: Literal["fulfilled", "rejected"] = "fulfilled" if conv.status == "answered" else "rejected"
    return ConversationTiming(index, 0.0, end, status, turns=conv.turns, spans=spans, error=conv.error)
