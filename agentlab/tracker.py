"""The bookkeeping that every runner shares: one ``BatchTracker`` per runner call.

It times each conversation, feeds the progress display and the event listeners, and builds the batch's
``BatchReport``. It knows displays only through the ``Progress`` protocol of ``agentlab.records``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from agentlab.agent import Agent, EventHandler, Prompt
from agentlab.budget import Budget
from agentlab.errors import ConversationTimeout, MaxTurnsExceeded
from agentlab.records import (
    AgentEvent,
    BatchEventHandler,
    BatchReport,
    ConversationTiming,
    Fulfilled,
    Outcome,
    Progress,
    ProgressOption,
    Rejected,
    RunResult,
)

__all__ = ["BatchTracker", "error_text", "print_event"]


class BatchTracker:
    """Times one batch, feeds the progress display and the event log, and builds the ``BatchReport``.

    It belongs to one runner call (a local), never to the Agent.
    """

    def __init__(
        self,
        runner: str,
        prompts: list[Prompt],
        progress: ProgressOption,
        log: bool,
        on_event: BatchEventHandler | None,
        budget: Budget | None = None,
    ) -> None:
        self.runner = runner
        self.budget = budget  # run_bounded(..., budget=...): every model call of the batch spends from it
        # passed only when set, so that an Agent subclass whose run() predates budgets still works
        self.extra: dict[str, Any] = {"budget": budget} if budget is not None else {}
        self.prompts = prompts
        self.progress: Progress | None = None
        if progress:  # a view loads only when a batch asks for one: `import agentlab` loads none
            from agentlab.views.live import make_progress

            self.progress = make_progress(progress)
        self.listeners: list[BatchEventHandler] = [h for h in (on_event, self.log_event if log else None) if h]
        self.timings: list[ConversationTiming | None] = [None] * len(prompts)
        self.origin, self.started_at_wall = time.perf_counter(), time.time()
        self.agent_name = ""
        self.ended: float | None = None

    def __enter__(self) -> BatchTracker:
        if self.progress:
            self.progress.start_batch(len(self.prompts), self.runner)
        self.origin, self.started_at_wall = time.perf_counter(), time.time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.ended = time.perf_counter()
        if self.progress:
            self.progress.end_batch()

    def log_event(self, index: int, event: AgentEvent) -> None:
        """``log=True``: print the event with its time since the batch started."""
        print_event(index, event, self.origin)

    async def run_one(self, agent: Agent, index: int, prompt: Prompt, timeout: float | None = None) -> RunResult:
        """Run conversation ``index`` and record its timing. Its failure is recorded, then raised."""
        self.agent_name = agent.name
        if self.progress:
            self.progress.conversation_started(index)
        start = time.perf_counter()
        try:
            limit = asyncio.timeout(timeout)
            try:
                async with limit:
                    result = await agent.run(prompt, on_event=self.handler_for(index), **self.extra)
            except TimeoutError:
                if timeout is None or not limit.expired():  # a TimeoutError of the conversation's own
                    raise
                raise ConversationTimeout(timeout) from None
        except BaseException as exc:
            self.record(index, Rejected(exc), start)
            raise
        self.record(index, Fulfilled(result), start)
        return result

    async def settle_one(
        self,
        agent: Agent,
        index: int,
        prompt: Prompt,
        limiter: asyncio.Semaphore | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run conversation ``index`` and turn its result or its failure into an ``Outcome``."""
        async with limiter or contextlib.nullcontext():
            try:
                return Fulfilled(await self.run_one(agent, index, prompt, timeout))
            except Exception as exc:  # a conversation's failure is kept, not raised
                return Rejected(exc)

    def handler_for(self, index: int) -> EventHandler | None:
        """The agent's on_event for conversation ``index``, or None when nobody listens (the fast path)."""
        if not self.listeners and not self.progress:
            return None
        listeners, progress = self.listeners, self.progress

        def handle(event: AgentEvent) -> None:
            if progress:
                progress.conversation_event(index, event)
            for listener in listeners:
                listener(index, event)

        return handle

    def record(self, index: int, outcome: Outcome, start: float) -> None:
        end = time.perf_counter()
        if isinstance(outcome, Fulfilled):
            result = outcome.value
            timing = ConversationTiming(
                index,
                result.started_at - self.origin,
                result.ended_at - self.origin,
                "fulfilled",
                turns=result.turns,
                spans=tuple(span.shifted(self.origin) for span in result.spans),
            )
        else:
            turns = outcome.reason.max_turns if isinstance(outcome.reason, MaxTurnsExceeded) else 0
            timing = ConversationTiming(
                index, start - self.origin, end - self.origin, "rejected", turns=turns, error=error_text(outcome.reason)
            )
        self.timings[index] = timing
        if self.progress:
            self.progress.conversation_finished(index, outcome)

    def report(self) -> BatchReport:
        wall = (self.ended or time.perf_counter()) - self.origin
        timings = tuple(t for t in self.timings if t is not None)
        return BatchReport(self.runner, wall, timings, self.agent_name, self.started_at_wall)


def error_text(error: BaseException) -> str:
    """``"BackendError: the model server failed …"``: the error's type, then its message if it has one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def print_event(index: int, event: AgentEvent, origin: float | None = None) -> None:
    """The ``log=True`` line for one event: ``[conv 2] → sum_numbers(a=3, b=4)`` and ``[conv 2] ← 7``.

    With ``origin`` (the batch's start), each line starts with its time: `` 1.02 s  [conv 2] ← 7``.
    """
    stamp = f"{event.time - origin:5.2f} s  " if origin is not None else ""
    if event.kind == "tool_start":
        print(f"{stamp}[conv {index}] → {event.name}({event.detail})")
    elif event.kind == "tool_end":
        print(f"{stamp}[conv {index}] ← {event.detail}")
    elif event.kind == "model_end" and event.detail == "answer":
        print(f"{stamp}[conv {index}] ✓ answered")
