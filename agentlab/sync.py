"""``run_sync``: call async code from sync code, in a script or inside a running loop (a Jupyter cell).

In a plain script it is ``asyncio.run(coro)``. Inside a running loop ``asyncio.run`` refuses ("cannot be
called from a running event loop"), so the coroutine runs on a fresh loop in a worker thread, and this thread
waits for it. Two things make that wait safe:

- **One Ctrl-C stops it.** The interrupt arrives in the waiting thread (the kernel's main thread), not in the
  worker, so the wait catches it, cancels the worker's task, gives it ``CANCEL_GRACE`` seconds to finish
  cancelling (its conversations' requests are closed), and raises the ``KeyboardInterrupt``. While it waits,
  the process's own SIGINT handler is the default one, so ``asyncio.run``'s handler (which would only cancel a
  task that cannot run while we block) does not swallow the first Ctrl-C.
- **Nothing stays behind.** The worker loop is shut down as ``asyncio.run`` does (async generators first, so
  its model client is closed) and then dropped.

In a notebook, prefer top-level ``await``: it needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["run_sync", "CANCEL_GRACE"]

T = TypeVar("T")
CANCEL_GRACE = 5.0  # seconds a cancelled worker gets to finish cancelling before the interrupt goes on


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, and return its result (see the module's docstring)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: T = WorkerRun(coro).wait()
    return result


class WorkerRun:
    """One coroutine on a fresh loop in a daemon thread, that the calling thread waits for or cancels."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.done = threading.Event()
        self.started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.work, name="agentlab-run-sync", daemon=True)

    def work(self) -> None:
        try:
            self.result = asyncio.run(self.main())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self.error = exc
        finally:
            self.started.set()
            self.done.set()

    async def main(self) -> Any:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        self.started.set()
        return await self.coro

    def wait(self) -> Any:
        self.thread.start()
        try:
            with default_sigint():
                self.done.wait()
        except BaseException:  # Ctrl-C (or any error raised into this wait): cancel the worker, then go on
            self.cancel()
            raise
        if self.error is not None:
            raise self.error
        return self.result

    def cancel(self) -> None:
        self.started.wait(CANCEL_GRACE)
        if self.loop is not None and self.task is not None and not self.done.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to cancel
                self.loop.call_soon_threadsafe(self.task.cancel)
        self.done.wait(CANCEL_GRACE)


@contextlib.contextmanager
def default_sigint() -> Iterator[None]:
    """While we block in the main thread, let SIGINT raise ``KeyboardInterrupt`` here, at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
