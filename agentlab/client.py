"""Which model server the agents talk to, one client per event loop, and ``run_sync`` for scripts.

- By default every run talks to the **offline server**: a local HTTP server that speaks the Responses API
  with a scripted math model. It starts the first time it is needed, once per process. No key, no network.
- ``AGENTLAB_BACKEND=openai`` together with ``OPENAI_API_KEY`` switches to the real OpenAI API, through a local
  proxy (``offline/proxy.py``, started once per process) that keeps the lesson markers working and removes
  them before the real model sees them. It forwards to ``OPENAI_BASE_URL`` when set, else the official API.
- ``AGENTLAB_OFFLINE_URL=http://127.0.0.1:8765/v1`` uses an offline server you started yourself
  (``python -m agentlab serve``) instead of one in this process; the benchmark does this.

The client uses openai's aiohttp transport (``DefaultAioHttpClient``): at high concurrency it beats the default
httpx pool by about 2x (see the benchmark in the README and openai-python issue 1596).

An ``AsyncOpenAI`` client belongs to the event loop it was first used on, so ``default_client()`` keeps one per
running loop and closes it when that loop shuts down (``asyncio.run`` does this for you).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import gc
import signal
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab import settings
from agentlab.errors import ConfigurationError
from agentlab.settings import Backend

if TYPE_CHECKING:  # the offline server is a leaf that the client starts on first use, never at import
    from agentlab.offline import OfflineServer

__all__ = ["DEFAULT_MODEL", "default_client", "make_client", "offline_server", "run_sync"]

T = TypeVar("T")
DEFAULT_MODEL = settings.model()
OFFLINE_API_KEY = "offline"  # the offline server ignores keys; the openai client insists on one
IN_PROCESS_URL = "http://offline.invalid/v1"  # never resolved: an in-process transport answers it
# Seconds per attempt. The openai client's own default is 600 s; agentlab chooses 120 s for the real API, and
# 8 s for the offline server, none of whose answers takes longer: 3 attempts of a hung request take about 25 s.
OPENAI_TIMEOUT = 120.0
OFFLINE_TIMEOUT = 8.0
CANCEL_GRACE = 5.0  # seconds a run_sync worker cancelled by Ctrl-C gets to finish cancelling

_server: OfflineServer | None = None
_server_lock = threading.Lock()
_proxies: dict[str, OfflineServer] = {}  # proxy mode: one local proxy per upstream URL
LOOP_ATTRIBUTE = "_agentlab_default_client"  # where a loop keeps its LoopClient: see default_client()
_loops_with_clients: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()  # weak: never keeps one alive


def offline_server() -> OfflineServer:
    """The process's offline server, started on first use (its settings come from ``AGENTLAB_*`` variables).

    With ``AGENTLAB_BACKEND=openai`` it is the proxy in front of the real API (same ``/offline/stats``), one
    per upstream URL.
    """
    from agentlab.offline import config_from_env, start  # aiohttp's server loads here, the first time it is needed

    global _server
    with _server_lock:
        if settings.backend() == "openai":
            upstream = settings.upstream_url()
            if upstream not in _proxies:
                _proxies[upstream] = start(dataclasses.replace(config_from_env(), upstream=upstream))
            return _proxies[upstream]
        if _server is None:
            _server = start()
        return _server


def make_client(
    *,
    backend: Backend | None = None,
    max_retries: int = 2,
    timeout: float | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> AsyncOpenAI:
    """A new ``AsyncOpenAI`` client for the chosen backend. You own it: ``await client.close()`` when done.

    ``timeout`` is per attempt: 120 s for the real API, 8 s for the offline server by default (so that a
    request that hangs, ``[fault=hang]`` with no ``run_bounded(timeout=...)``, fails in about 25 s, not 6 min).
    ``http_client`` replaces openai's aiohttp transport. With the offline backend and no
    ``AGENTLAB_OFFLINE_URL``, it answers for the server, which is then not started: pass
    ``httpx.AsyncClient(transport=agentlab.offline.transport())`` to talk to it in this process, with no socket.
    """
    backend = backend or settings.backend()
    if timeout is None:
        timeout = OPENAI_TIMEOUT if backend == "openai" else OFFLINE_TIMEOUT
    if backend == "openai":
        key = settings.api_key()
        if not key:
            raise ConfigurationError(
                "AGENTLAB_BACKEND=openai needs an API key: set OPENAI_API_KEY in the environment "
                "(never in a notebook cell), or unset AGENTLAB_BACKEND to use the offline server."
            )
        base_url = offline_server().base_url  # the proxy: the key travels to it, and on only to upstream
    else:
        key = OFFLINE_API_KEY
        base_url = settings.offline_url() or (IN_PROCESS_URL if http_client else offline_server().base_url)
    return AsyncOpenAI(
        api_key=key,
        base_url=base_url,
        max_retries=max_retries,
        timeout=timeout,
        # openai takes an httpx.AsyncClient as well as its own httpx2 one, though its types name only the latter
        http_client=cast(Any, http_client) or DefaultAioHttpClient(),
    )


@dataclasses.dataclass(eq=False)
class LoopClient:
    """What a running loop holds: its client, the generator that closes it at shutdown, and whether it has."""

    client: AsyncOpenAI
    closer: AsyncIterator[None] | None = None
    closed: bool = False


def default_client() -> AsyncOpenAI:
    """The client of the running event loop: made on first use, closed when the loop shuts down.

    The loop itself holds its client (and the generator that closes it), so the two are freed together. A
    map from loops to clients would keep every loop alive for ever: the client's aiohttp session refers
    back to its loop, so even a weak-keyed map never lets a key go.
    """
    loop = asyncio.get_running_loop()
    held: LoopClient | None = getattr(loop, LOOP_ATTRIBUTE, None)
    if held is None:
        reclaim_unclosed_clients()
        held = LoopClient(make_client())
        held.closer = close_at_shutdown(held)
        setattr(loop, LOOP_ATTRIBUTE, held)
        _loops_with_clients.add(loop)
    return held.client


def close_at_shutdown(held: LoopClient) -> AsyncIterator[None]:
    """Arrange for the loop's client to be closed when the running loop shuts down.

    The trick: an async generator that has started is registered with its loop, and ``asyncio.run`` calls
    ``loop.shutdown_asyncgens()`` before it closes the loop, which runs the generator's ``finally``.
    """

    async def closer() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await held.client.close()
            held.closed = True

    generator = closer()
    first_step = cast(Coroutine[Any, Any, None], generator.__anext__())
    with contextlib.suppress(StopIteration):
        first_step.send(None)  # runs up to the `yield` at once: nothing in between awaits
    return generator


def reclaim_unclosed_clients() -> None:
    """Loops closed without ``shutdown_asyncgens`` never closed their client: say so, and free its sockets now.

    ``loop.close()`` alone (no ``asyncio.run``) skips the step that closes our client. Its sockets would then
    stay open until the cycle collector happens to run, one batch's worth per loop, without a word.
    """
    unclosed = [
        loop for loop in list(_loops_with_clients) if loop.is_closed() and not getattr(loop, LOOP_ATTRIBUTE).closed
    ]
    if not unclosed:
        return
    for loop in unclosed:
        _loops_with_clients.discard(loop)
    warnings.warn(
        f"{len(unclosed)} event loop(s) closed without loop.shutdown_asyncgens(), so agentlab could not close "
        "their model client, and its sockets stayed open; agentlab frees them now. Use asyncio.run(...), or "
        "`loop.run_until_complete(loop.shutdown_asyncgens())` before `loop.close()`.",
        RuntimeWarning,
        stacklevel=3,
    )
    del unclosed, loop
    gc.collect()  # loop, client, session and sockets refer to each other: only the cycle collector frees them


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, in a script or inside a running loop, and return its result.

    In a plain script it is ``asyncio.run(coro)``. Inside a running loop (a Jupyter cell) ``asyncio.run``
    refuses, so the coroutine runs with ``asyncio.run`` on a fresh loop in a worker thread, and this thread
    waits for it: the notebook's own loop is blocked meanwhile (in a notebook, prefer top-level ``await``).

    - **One Ctrl-C stops it.** The interrupt arrives in the waiting thread, not in the worker, so the wait
      cancels the worker's task, gives it ``CANCEL_GRACE`` seconds to finish cancelling (its requests are
      closed), and raises the ``KeyboardInterrupt``. While it waits, SIGINT has Python's default handler, so
      the handler of an ``asyncio.run`` around the cell (which would only cancel a task that cannot run while
      we block) does not swallow the first Ctrl-C.
    - **Nothing stays behind.** ``asyncio.run`` shuts the worker's loop down (its model client is closed).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    task_ready: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Task[T]]] = (
        concurrent.futures.Future()
    )
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    async def main() -> T:
        task_ready.set_result((asyncio.get_running_loop(), cast(asyncio.Task[T], asyncio.current_task())))
        return await coro

    def work() -> None:
        try:
            outcome.set_result(asyncio.run(main()))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome.set_exception(exc)

    threading.Thread(target=work, name="agentlab-run-sync", daemon=True).start()
    try:
        with default_sigint():
            return outcome.result()
    except BaseException:  # Ctrl-C (or any error raised into this wait): cancel the worker's task, then go on
        with contextlib.suppress(TimeoutError, RuntimeError):  # it never started, or its loop closed meanwhile
            if not outcome.done():
                loop, task = task_ready.result(CANCEL_GRACE)
                loop.call_soon_threadsafe(task.cancel)
                concurrent.futures.wait([outcome], CANCEL_GRACE)
        raise


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
