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
import dataclasses
import os
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab.errors import ConfigurationError

if TYPE_CHECKING:  # the offline server is a leaf that the client starts on first use, never at import
    from agentlab.offline import OfflineServer

__all__ = ["DEFAULT_MODEL", "default_client", "make_client", "offline_server", "run_sync", "selected_backend"]

T = TypeVar("T")
Backend = Literal["offline", "openai"]

DEFAULT_MODEL = os.environ.get("AGENTLAB_MODEL", "gpt-5-mini")
OFFLINE_API_KEY = "offline"  # the offline server ignores keys; the openai client insists on one
OPENAI_TIMEOUT = 120.0  # seconds per attempt: the openai client's own default
OFFLINE_TIMEOUT = 8.0  # seconds per attempt: 3 attempts of a hung request take about 25 s

_server: OfflineServer | None = None
_server_lock = threading.Lock()
_proxies: dict[str, OfflineServer] = {}  # proxy mode: one local proxy per upstream URL
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI] = weakref.WeakKeyDictionary()
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = weakref.WeakKeyDictionary()


def selected_backend() -> Backend:
    """``"offline"`` unless ``AGENTLAB_BACKEND=openai`` asks for the real API."""
    value = os.environ.get("AGENTLAB_BACKEND", "offline").strip().lower() or "offline"
    if value not in ("offline", "openai"):
        raise ConfigurationError(f"AGENTLAB_BACKEND={value!r} is not known: use 'offline' (default) or 'openai'")
    return "openai" if value == "openai" else "offline"


def offline_server() -> OfflineServer:
    """The process's offline server, started on first use (its settings come from ``AGENTLAB_*`` variables).

    With ``AGENTLAB_BACKEND=openai`` it is the proxy in front of the real API (same ``/offline/stats``).
    """
    if selected_backend() == "openai":
        return proxy_server()
    global _server
    with _server_lock:
        if _server is None:
            from agentlab.offline import start  # aiohttp's server loads here, the first time it is needed

            _server = start()
        return _server


def upstream_url() -> str:
    """Where proxy mode forwards to: ``OPENAI_BASE_URL`` (as the openai client reads it), else the official API."""
    return os.environ.get("OPENAI_BASE_URL", "").strip().rstrip("/") or "https://api.openai.com/v1"


def proxy_server() -> OfflineServer:
    """The process's proxy in front of the real API (one per upstream URL), started on first use."""
    upstream = upstream_url()
    with _server_lock:
        if upstream not in _proxies:
            from agentlab.offline import config_from_env, start

            _proxies[upstream] = start(dataclasses.replace(config_from_env(), upstream=upstream))
        return _proxies[upstream]


def make_client(*, backend: Backend | None = None, max_retries: int = 2, timeout: float | None = None) -> AsyncOpenAI:
    """A new ``AsyncOpenAI`` client for the chosen backend. You own it: ``await client.close()`` when done.

    ``timeout`` is per attempt. By default the real API gets 120 s, and the offline server 8 s: none of its
    answers takes longer, so a request that hangs (``[fault=hang]``, no ``run_bounded(timeout=...)``) fails
    after 3 attempts in about 25 s instead of 6 minutes.
    """
    backend = backend or selected_backend()
    if timeout is None:
        timeout = OPENAI_TIMEOUT if backend == "openai" else OFFLINE_TIMEOUT
    if backend == "openai":
        key = os.environ.get("OPENAI_API_KEY", "").strip()
        if not key:
            raise ConfigurationError(
                "AGENTLAB_BACKEND=openai needs an API key: set OPENAI_API_KEY in the environment "
                "(never in a notebook cell), or unset AGENTLAB_BACKEND to use the offline server."
            )
        base_url = proxy_server().base_url  # the key travels to it in Authorization, and on only to upstream
        return AsyncOpenAI(
            api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout, http_client=DefaultAioHttpClient()
        )
    return AsyncOpenAI(
        base_url=os.environ.get("AGENTLAB_OFFLINE_URL") or offline_server().base_url,
        api_key=OFFLINE_API_KEY,
        max_retries=max_retries,
        timeout=timeout,
        http_client=DefaultAioHttpClient(),
    )


def default_client() -> AsyncOpenAI:
    """The client of the running event loop: made on first use, closed when the loop shuts down."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = make_client()
        _closers[loop] = close_at_shutdown(client)
    return client


def close_at_shutdown(client: AsyncOpenAI) -> AsyncIterator[None]:
    """Arrange for ``client`` to be closed when the running loop shuts down.

    The trick: an async generator that has started is registered with its loop, and ``asyncio.run`` calls
    ``loop.shutdown_asyncgens()`` before it closes the loop, which runs the generator's ``finally``.
    """

    async def closer() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.close()

    generator = closer()
    first_step = cast(Coroutine[Any, Any, None], generator.__anext__())
    try:
        first_step.send(None)  # runs up to the `yield` at once: nothing in between awaits
    except StopIteration:
        pass
    return generator


# -- Bridging: calling async code from sync code ----------------------------------------------------------


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, and return its result.

    In a plain script this is ``asyncio.run(coro)``. Inside a running loop (a Jupyter cell), ``asyncio.run``
    raises "cannot be called from a running event loop", so the coroutine runs on a fresh loop in a worker
    thread instead, and this call waits for it. In a notebook, prefer top-level ``await``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentlab-run-sync") as pool:
        return pool.submit(asyncio.run, coro).result()
