"""Runners: many conversations with one Agent, four ways, and the batch's clock. Each returns them in input order.

=================  ======================================  =====================================
runner             how the conversations run               when one fails
=================  ======================================  =====================================
``run_serial``     one after another                       it raises (the rest never start)
``run_concurrent`` all at once (``asyncio.gather``)        it raises; the others are cancelled
``run_settled``    all at once                             its ``Outcome`` is ``Rejected``
``run_bounded``    at most ``max_concurrency`` at once,    its ``Outcome`` is ``Rejected``
                   or as fast as a rate-limit budget lets
=================  ======================================  =====================================

``as_completed`` yields ``(index, outcome)`` pairs as conversations finish (fastest first, not in input order),
for live processing.

What every runner takes:

- ``timeout=S``: a conversation that runs longer than S seconds (counted from when it starts) is cancelled and
  fails with ``ConversationTimeout`` (raised by the all-or-nothing runners, an outcome for the others).
- Three ways to watch, fed by the same events: ``progress=True`` (or ``"lanes"``, ``"table"``, or a ``Progress``
  object) draws the batch, ``log=True`` prints each tool call, ``on_event=f`` calls ``f(index, event)``.

Rate limits (``run_bounded``): ``budget=`` paces every model call of the batch (a ``Budget``, shared with other
batches if you like, or a Dask ``SharedBudget``). ``requests_per_minute=R, tokens_per_minute=T`` is only
shorthand for ``budget=Budget(R, T)``, a budget of this batch's own.

Every result list also carries ``.report``, a ``BatchReport`` with the batch's timing, kept by ``BatchClock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from agentlab.agent import Agent, EventHandler, Prompt, check_prompts
from agentlab.budget import budget_for_batch
from agentlab.errors import ConfigurationError, ConversationTimeout, MaxTurnsExceeded
from agentlab.model import RateBudget
from agentlab.records import (
    AgentEvent,
    Batch,
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

__all__ = ["run_serial", "run_concurrent", "run_settled", "run_bounded", "as_completed", "BatchEventHandler"]

T = TypeVar("T")


async def run_serial(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    timeout: float | None = None,
    progress: ProgressOption = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[RunResult]:
    """Run the conversations one after another. The batch takes the *sum* of their durations."""
    batch = BatchClock("run_serial", agent, prompts, timeout, progress, log, on_event)
    with batch:
        results = [await batch.run_one(i, prompt) for i, prompt in enumerate(batch.prompts)]
    return Batch(results, batch.report())


async def run_concurrent(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    timeout: float | None = None,
    progress: ProgressOption = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[RunResult]:
    """Run all the conversations at once. The batch takes about as long as the *longest* one.

    All or nothing, like ``Promise.all``: if one conversation fails, its error is raised and the
    others are cancelled (and awaited, so no task is left running).
    """
    batch = BatchClock("run_concurrent", agent, prompts, timeout, progress, log, on_event)
    with batch:
        results = await gather_or_cancel([batch.run_one(i, p) for i, p in enumerate(batch.prompts)])
    return Batch(results, batch.report())


async def run_settled(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    timeout: float | None = None,
    progress: ProgressOption = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[Outcome]:
    """Run all the conversations at once and keep every outcome, like ``Promise.allSettled``.

    Never raises for a conversation's failure: each result is ``Fulfilled(value)`` or ``Rejected(reason)``.
    """
    batch = BatchClock("run_settled", agent, prompts, timeout, progress, log, on_event)
    with batch:
        outcomes = await gather_or_cancel([batch.settle_one(i, p) for i, p in enumerate(batch.prompts)])
    return Batch(outcomes, batch.report())


async def run_bounded(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    budget: RateBudget | None = None,
    progress: ProgressOption = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[Outcome]:
    """Like ``run_settled``, but at most ``max_concurrency`` conversations run at once (a semaphore),
    or every model call waits for its share of a rate-limit ``budget`` (no 429s, the whole limit used), or both.
    """
    limiter = check_concurrency(max_concurrency)
    budget = budget_for_batch(budget, requests_per_minute, tokens_per_minute, bounded=limiter is not None)
    batch = BatchClock("run_bounded", agent, prompts, timeout, progress, log, on_event, budget)
    with batch:
        outcomes = await gather_or_cancel([batch.settle_one(i, p, limiter) for i, p in enumerate(batch.prompts)])
    return Batch(outcomes, batch.report())


async def as_completed(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    progress: ProgressOption = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> AsyncGenerator[tuple[int, Outcome], None]:
    """Yield ``(index, outcome)`` as each conversation finishes: fastest first, not in input order.

    Leaving the loop early cancels the conversations still running. To do that at once rather than when
    the generator is garbage-collected, wrap it: ``async with contextlib.aclosing(as_completed(...)) as s:``.
    """
    limiter = check_concurrency(max_concurrency)
    batch = BatchClock("as_completed", agent, prompts, timeout, progress, log, on_event)
    with batch:
        tasks = [asyncio.create_task(numbered(i, batch.settle_one(i, p, limiter))) for i, p in enumerate(batch.prompts)]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            await cancel_and_wait(tasks)


# -- The batch's clock: one per runner call --------------------------------------------------------------------


class BatchClock:
    """Times one batch, feeds the progress display and the event listeners, and builds the ``BatchReport``.

    It belongs to one runner call (a local), never to the Agent. It knows displays only through the
    ``Progress`` protocol of ``agentlab.records``, and loads a view only when the batch asks for one.
    """

    def __init__(
        self,
        runner: str,
        agent: Agent,
        prompts: Iterable[Prompt],
        timeout: float | None,
        progress: ProgressOption,
        log: bool,
        on_event: BatchEventHandler | None,
        budget: RateBudget | None = None,
    ) -> None:
        self.runner, self.agent, self.prompts = runner, agent, check_prompts(prompts)
        self.timeout = check_timeout(timeout)
        # passed only when set, so that an Agent subclass whose run() predates budgets still works
        self.extra: dict[str, Any] = {"budget": budget} if budget is not None else {}
        self.progress: Progress | None = None
        if progress:  # a view loads only when a batch asks for one: `import agentlab` loads none
            from agentlab.views.live import make_progress

            self.progress = make_progress(progress)
        self.listeners = [h for h in (on_event, self.log_event if log else None) if h is not None]
        self.timings: list[ConversationTiming | None] = [None] * len(self.prompts)
        self.origin, self.started_at_wall, self.ended = time.perf_counter(), time.time(), 0.0

    def __enter__(self) -> BatchClock:
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

    async def run_one(self, index: int, prompt: Prompt) -> RunResult:
        """Run conversation ``index`` within the timeout and record its timing. Its failure is recorded, then raised."""
        if self.progress:
            self.progress.conversation_started(index)
        start = time.perf_counter()
        try:
            limit = asyncio.timeout(self.timeout)
            try:
                async with limit:
                    result = await self.agent.run(prompt, on_event=self.handler_for(index), **self.extra)
            except TimeoutError:
                if self.timeout is None or not limit.expired():  # a TimeoutError of the conversation's own
                    raise
                raise ConversationTimeout(self.timeout) from None
        except BaseException as exc:
            self.record(index, Rejected(exc), start)
            raise
        self.record(index, Fulfilled(result), start)
        return result

    async def settle_one(self, index: int, prompt: Prompt, limiter: asyncio.Semaphore | None = None) -> Outcome:
        """Run conversation ``index`` (when the limiter lets it) and turn its result or failure into an Outcome."""
        async with limiter or contextlib.nullcontext():
            try:
                return Fulfilled(await self.run_one(index, prompt))
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
        if isinstance(outcome, Fulfilled):
            result, origin = outcome.value, self.origin
            spans = tuple(span.shifted(origin) for span in result.spans)
            timing = ConversationTiming(
                index, result.started_at - origin, result.ended_at - origin, "fulfilled", result.turns, spans
            )
        else:
            turns = outcome.reason.max_turns if isinstance(outcome.reason, MaxTurnsExceeded) else 0
            end, error = time.perf_counter() - self.origin, error_text(outcome.reason)
            timing = ConversationTiming(index, start - self.origin, end, "rejected", turns=turns, error=error)
        self.timings[index] = timing
        if self.progress:
            self.progress.conversation_finished(index, outcome)

    def report(self) -> BatchReport:
        wall = (self.ended or time.perf_counter()) - self.origin
        timings = tuple(t for t in self.timings if t is not None)
        return BatchReport(self.runner, wall, timings, self.agent.name, self.started_at_wall)


def check_concurrency(max_concurrency: int | None) -> asyncio.Semaphore | None:
    """The semaphore of ``run_bounded`` / ``as_completed`` (None: no cap), after checking the number."""
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1
    ):
        raise ConfigurationError(f"max_concurrency must be a whole number of at least 1, got {max_concurrency!r}")
    return asyncio.Semaphore(max_concurrency) if max_concurrency else None


def check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ConfigurationError(
            f"timeout must be a number of seconds greater than 0 (or None for no limit), got {timeout!r}"
        )
    return timeout


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


def error_text(error: BaseException) -> str:
    """``"BackendError: the model server failed …"``: the error's type, then its message if it has one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def print_event(index: int, event: AgentEvent, origin: float) -> None:
    """The ``log=True`` line for one event, with its time since the batch started: `` 1.02 s  [conv 2] ← 7``."""
    stamp = f"{event.time - origin:5.2f} s  "
    if event.kind == "tool_start":
        print(f"{stamp}[conv {index}] → {event.name}({event.detail})")
    elif event.kind == "tool_end":
        print(f"{stamp}[conv {index}] ← {event.detail}")
    elif event.kind == "model_end" and event.detail == "answer":
        print(f"{stamp}[conv {index}] ✓ answered")
