"""Runners: many conversations with one Agent, four ways. Each returns results in input order.

=================  ======================================  =====================================
runner             how the conversations run               when one fails
=================  ======================================  =====================================
``run_serial``     one after another                       it raises (the rest never start)
``run_concurrent`` all at once (``asyncio.gather``)        it raises; the others are cancelled
``run_settled``    all at once                             its ``Outcome`` is ``Rejected``
``run_bounded``    at most ``max_concurrency`` at once     its ``Outcome`` is ``Rejected``
=================  ======================================  =====================================

``as_completed`` yields ``(index, outcome)`` pairs as conversations finish, for live processing.

Every result list also carries ``.report``, a ``BatchReport`` with the batch's timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeAlias, TypeVar

from agentlab.agent import Agent, EventHandler, Prompt, check_prompts
from agentlab.errors import ConversationTimeout, MaxTurnsExceeded
from agentlab.progress import Progress, make_progress
from agentlab.results import AgentEvent, Batch, BatchReport, ConversationTiming, Fulfilled, Outcome, Rejected, RunResult

__all__ = ["run_serial", "run_concurrent", "run_settled", "run_bounded", "as_completed", "BatchEventHandler"]

BatchEventHandler: TypeAlias = Callable[[int, AgentEvent], None]
T = TypeVar("T")


async def run_serial(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    progress: bool | Progress = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[RunResult]:
    """Run the conversations one after another. The batch takes the *sum* of their durations."""
    batch = BatchTracker("run_serial", check_prompts(prompts), progress, log, on_event)
    with batch:
        results = [await batch.run_one(agent, i, prompt) for i, prompt in enumerate(batch.prompts)]
    return Batch(results, batch.report())


async def run_concurrent(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    progress: bool | Progress = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[RunResult]:
    """Run all the conversations at once. The batch takes about as long as the *longest* one.

    All or nothing, like ``Promise.all``: if one conversation fails, its error is raised and the
    others are cancelled (and awaited, so no task is left running).
    """
    batch = BatchTracker("run_concurrent", check_prompts(prompts), progress, log, on_event)
    with batch:
        results = await gather_or_cancel([batch.run_one(agent, i, p) for i, p in enumerate(batch.prompts)])
    return Batch(results, batch.report())


async def run_settled(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    progress: bool | Progress = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[Outcome]:
    """Run all the conversations at once and keep every outcome, like ``Promise.allSettled``.

    Never raises for a conversation's failure: each result is ``Fulfilled(value)`` or ``Rejected(reason)``.
    """
    batch = BatchTracker("run_settled", check_prompts(prompts), progress, log, on_event)
    with batch:
        outcomes = await gather_or_cancel([batch.settle_one(agent, i, p) for i, p in enumerate(batch.prompts)])
    return Batch(outcomes, batch.report())


async def run_bounded(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    max_concurrency: int,
    timeout: float | None = None,
    progress: bool | Progress = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[Outcome]:
    """Like ``run_settled``, but at most ``max_concurrency`` conversations run at once (a semaphore),
    and each one that runs longer than ``timeout`` seconds is cancelled and becomes
    ``Rejected(ConversationTimeout)``. A conversation's time counts from when it gets its turn to run.
    """
    limiter, timeout = check_limits(max_concurrency, timeout)
    batch = BatchTracker("run_bounded", check_prompts(prompts), progress, log, on_event)
    with batch:
        outcomes = await gather_or_cancel(
            [batch.settle_one(agent, i, p, limiter, timeout) for i, p in enumerate(batch.prompts)]
        )
    return Batch(outcomes, batch.report())


async def as_completed(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    progress: bool | Progress = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> AsyncGenerator[tuple[int, Outcome], None]:
    """Yield ``(index, outcome)`` as each conversation finishes: fastest first, not in input order.

    Leaving the loop early cancels the conversations still running. To do that at once rather than when
    the generator is garbage-collected, wrap it: ``async with contextlib.aclosing(as_completed(...)) as s:``.
    """
    limiter, timeout = check_limits(max_concurrency, timeout)
    batch = BatchTracker("as_completed", check_prompts(prompts), progress, log, on_event)
    with batch:
        tasks = [
            asyncio.create_task(numbered(i, batch.settle_one(agent, i, p, limiter, timeout)))
            for i, p in enumerate(batch.prompts)
        ]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            await cancel_and_wait(tasks)


# -- The bookkeeping shared by every runner -------------------------------------------------------------


class BatchTracker:
    """Times one batch, feeds the progress display and the event log, and builds the ``BatchReport``.

    It belongs to one runner call (a local), never to the Agent.
    """

    def __init__(
        self,
        runner: str,
        prompts: list[Prompt],
        progress: bool | Progress,
        log: bool,
        on_event: BatchEventHandler | None,
    ) -> None:
        self.runner = runner
        self.prompts = prompts
        self.progress = make_progress(progress)
        self.listeners: list[BatchEventHandler] = [h for h in (on_event, print_event if log else None) if h]
        self.timings: list[ConversationTiming | None] = [None] * len(prompts)
        self.origin = time.perf_counter()
        self.ended: float | None = None

    def __enter__(self) -> BatchTracker:
        if self.progress:
            self.progress.start_batch(len(self.prompts), self.runner)
        self.origin = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.ended = time.perf_counter()
        if self.progress:
            self.progress.end_batch()

    async def run_one(self, agent: Agent, index: int, prompt: Prompt, timeout: float | None = None) -> RunResult:
        """Run conversation ``index`` and record its timing. Its failure is recorded, then raised."""
        if self.progress:
            self.progress.conversation_started(index)
        start = time.perf_counter()
        try:
            limit = asyncio.timeout(timeout)
            try:
                async with limit:
                    result = await agent.run(prompt, on_event=self.handler_for(index))
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
                index, start - self.origin, end - self.origin, "rejected", turns=turns, error=describe(outcome.reason)
            )
        self.timings[index] = timing
        if self.progress:
            self.progress.conversation_finished(index, outcome)

    def report(self) -> BatchReport:
        wall = (self.ended or time.perf_counter()) - self.origin
        return BatchReport(self.runner, wall, tuple(t for t in self.timings if t is not None))


def check_limits(max_concurrency: int | None, timeout: float | None) -> tuple[asyncio.Semaphore | None, float | None]:
    """Validate the limits of ``run_bounded`` / ``as_completed``, and make the semaphore."""
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1
    ):
        raise ValueError(f"max_concurrency must be a whole number of at least 1, got {max_concurrency!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds greater than 0 (or None for no limit), got {timeout!r}")
    return (asyncio.Semaphore(max_concurrency) if max_concurrency else None), timeout


async def gather_or_cancel(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Start every coroutine as a task at once (like JavaScript promises), then wait for all of them.

    If one raises (or we are cancelled), the others are cancelled and awaited before the error goes on, so
    no task is ever left running behind the caller's back.
    """
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        await cancel_and_wait(tasks)
        raise


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel the tasks that are still running, and wait until each one has really stopped."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def numbered(index: int, outcome: Awaitable[Outcome]) -> tuple[int, Outcome]:
    return index, await outcome


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def print_event(index: int, event: AgentEvent) -> None:
    """The ``log=True`` line for one event: ``[conv 2] → sum_numbers(a=3, b=4)`` and ``[conv 2] ← 7``."""
    if event.kind == "tool_start":
        print(f"[conv {index}] → {event.name}({event.detail})")
    elif event.kind == "tool_end":
        print(f"[conv {index}] ← {event.detail}")
    elif event.kind == "model_end" and event.detail == "answer":
        print(f"[conv {index}] ✓ answered")
