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

Every result list also carries ``.report``, a ``BatchReport`` with the batch's timing (``tracker.py`` keeps
the books). ``progress=True`` shows a bar, ``log=True`` prints each tool call, ``on_event`` gets every event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from agentlab.agent import Agent, Prompt, check_prompts
from agentlab.budget import Budget, budget_for_batch
from agentlab.errors import ConfigurationError
from agentlab.records import Batch, BatchEventHandler, Outcome, ProgressOption, RunResult
from agentlab.tracker import BatchTracker

__all__ = ["run_serial", "run_concurrent", "run_settled", "run_bounded", "as_completed", "BatchEventHandler"]

T = TypeVar("T")


async def run_serial(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    progress: ProgressOption = False,
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
    progress: ProgressOption = False,
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
    progress: ProgressOption = False,
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
    max_concurrency: int | None = None,
    timeout: float | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    budget: Budget | None = None,
    progress: ProgressOption = False,
    log: bool = False,
    on_event: BatchEventHandler | None = None,
) -> Batch[Outcome]:
    """Like ``run_settled``, but at most ``max_concurrency`` conversations run at once (a semaphore),
    and each one that runs longer than ``timeout`` seconds is cancelled and becomes
    ``Rejected(ConversationTimeout)``. A conversation's time counts from when it gets its turn to run.

    ``requests_per_minute`` / ``tokens_per_minute`` (or a ``budget`` shared with other batches) pace every
    model call to the provider's rate limit instead (``agentlab.budget``): no 429s, the whole limit used.
    """
    limiter, timeout = check_limits(max_concurrency, timeout)
    budget = budget_for_batch(budget, requests_per_minute, tokens_per_minute, bounded=limiter is not None)
    batch = BatchTracker("run_bounded", check_prompts(prompts), progress, log, on_event, budget)
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
    progress: ProgressOption = False,
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


def check_limits(max_concurrency: int | None, timeout: float | None) -> tuple[asyncio.Semaphore | None, float | None]:
    """Validate the limits of ``run_bounded`` / ``as_completed``, and make the semaphore."""
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1
    ):
        raise ConfigurationError(f"max_concurrency must be a whole number of at least 1, got {max_concurrency!r}")
    if timeout is not None and not timeout > 0:
        raise ConfigurationError(
            f"timeout must be a number of seconds greater than 0 (or None for no limit), got {timeout!r}"
        )
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
