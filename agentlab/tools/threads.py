"""The threads that sync tools run in: a bounded pool of daemon threads, of agentlab's own.

Why not ``asyncio.to_thread``, the usual way? Its threads are the loop's default pool: ``min(32, cores + 4)``
of them (6 on a 2-core machine), and ``asyncio.run`` waits for every one of them before it returns. A thread
cannot be stopped, so a sync tool that never returns, even one whose conversation timed out, keeps the
script from ever ending, and six of them starve every other conversation's tools. (Measured with Python 3.11:
``asyncio.run(asyncio.wait_for(asyncio.to_thread(event.wait), 0.5))`` times out, then never returns.)

Here:

- At most ``size`` sync tool calls run at once (``AGENTLAB_TOOL_THREADS``, default 32); more wait their turn.
- When the caller of a running call gives up (``task.cancel()``, ``run_bounded(timeout=...)``, Ctrl-C), the
  call is **abandoned**: its thread runs on until the function returns, and its result is dropped. It no
  longer counts toward ``size``, so a new thread takes its place and stuck tools never starve the others. At
  most ``4 × size`` stuck threads are replaced this way (``.stuck`` counts them), so threads stay bounded.
- Every thread is a daemon: one that is stuck never holds up the interpreter's exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentlab import settings
from agentlab.errors import ConfigurationError

__all__ = ["Job", "ToolThreads", "tool_threads"]


@dataclass(eq=False)
class Job:
    """One sync call: what to run, and the future its caller waits on."""

    function: Callable[..., Any]
    kwargs: dict[str, Any]
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    replaced: bool = False  # its caller gave up while it ran, and a new thread took its place


class ToolThreads:
    """A bounded pool of daemon threads whose stuck calls can be written off (see the module's docstring)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ConfigurationError(f"a pool needs at least 1 thread, got size={size}: set AGENTLAB_TOOL_THREADS >= 1")
        self.size, self.max_abandoned = size, 4 * size
        self.workers = 0  # threads that take jobs: busy or idle, at most `size`
        self.idle = 0  # of those, the ones waiting for a job
        self.pending = 0  # jobs put in the queue and not yet taken
        self.stuck = 0  # replaced threads still stuck in a call whose caller gave up
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()

    async def run(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Run ``function(**kwargs)`` in a thread of the pool and return its result (or raise its error)."""
        job = self.submit(function, kwargs)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            self.abandon(job)  # a no-op if it had finished: then the CancelledError was the tool's own
            raise

    def submit(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> Job:
        """Queue a call; a thread runs it as soon as one is free. Wait on ``job.future``."""
        job = Job(function, kwargs)
        with self._lock:
            self.pending += 1
            self._jobs.put(job)
            self._grow()
        return job

    def abandon(self, job: Job) -> None:
        """The caller gave up: cancel the call if it has not started, else write its thread off."""
        if job.future.cancel():
            return  # not started: a thread will skip it
        with self._lock:
            if job.future.done() or job.replaced or self.stuck >= self.max_abandoned:
                return  # finished meanwhile, written off already, or too many are stuck: it keeps its place
            job.replaced = True
            self.stuck += 1
            self.workers -= 1  # its place goes to a new thread
            self._grow()

    def _grow(self) -> None:
        """Start a thread if jobs wait for more threads than are idle (called with the lock held)."""
        if self.pending > self.idle and self.workers < self.size:
            self.workers += 1
            threading.Thread(target=self._work, name="agentlab-tool", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self.idle += 1
            job = self._jobs.get()
            with self._lock:
                self.idle -= 1
                self.pending -= 1
            run(job)
            with self._lock:
                replaced = job.replaced
                if replaced:
                    self.stuck -= 1
            # Drop the job before waiting for the next: its future's callbacks refer to the caller's event
            # loop, and an idle thread holding it would keep that loop (and its client) alive.
            del job
            if replaced:
                return  # another thread took its place while it was stuck: it leaves


def run(job: Job) -> None:
    """Run one job in this thread and settle its future (unless its caller cancelled it before it started)."""
    if not job.future.set_running_or_notify_cancel():
        return
    try:
        result = job.function(**job.kwargs)
    except BaseException as exc:  # the caller decides what a tool's failure means
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)


_pool: ToolThreads | None = None
_pool_lock = threading.Lock()


def tool_threads() -> ToolThreads:
    """The process's pool for sync tools, made on first use (size from ``AGENTLAB_TOOL_THREADS``)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ToolThreads(settings.tool_threads())
        return _pool
