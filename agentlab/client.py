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
import dataclasses
import gc
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, Literal, cast

from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab.errors import ConfigurationError
from agentlab.sync import run_sync

if TYPE_CHECKING:  # the offline server is a leaf that the client starts on first use, never at import
    from agentlab.offline import OfflineServer

__all__ = ["DEFAULT_MODEL", "default_client", "make_client", "offline_server", "run_sync", "selected_backend"]

Backend = Literal["offline", "openai"]

DEFAULT_MODEL = os.environ.get("AGENTLAB_MODEL", "gpt-5-mini")
OFFLINE_API_KEY = "offline"  # the offline server ignores keys; the openai client insists on one
OPENAI_TIMEOUT = 120.0  # seconds per attempt: the openai client's own default
OFFLINE_TIMEOUT = 8.0  # seconds per attempt: 3 attempts of a hung request take about 25 s

_server: OfflineServer | None = None
_server_lock = threading.Lock()
_proxies: dict[str, OfflineServer] = {}  # proxy mode: one local proxy per upstream URL
LOOP_ATTRIBUTE = "_agentlab_default_client"  # where a loop keeps its LoopClient: see default_client()
_loops_with_clients: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()  # weak: never keeps one alive


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
    try:
        first_step.send(None)  # runs up to the `yield` at once: nothing in between awaits
    except StopIteration:
        pass
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
