"""Serve the offline app on a host and port until told to stop: the one place that sets up aiohttp's runner.

``start()`` (a thread), ``start_process()`` and ``python -m agentlab serve`` (a process) all run ``serve``. The
runner's settings are a production server's: a read time-out (``ServerConfig.read_timeout``) for headers, bodies
and idle connections, a short linger and a short graceful shutdown, and one line of log per broken request.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from agentlab.offline.httplog import ONE_LINE_LOG
from agentlab.offline.latency import ServerConfig
from agentlab.offline.server import create_app

__all__ = ["serve", "LOCAL_HOSTS", "READY_LINE"]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
BACKLOG = 4096  # above the default 128, so that 1000 simultaneous connections are all accepted
READY_LINE = "agentlab offline server listening on "
LINGER_SECONDS = 1.0  # after an answer sent before its body was read (413, 408), read and drop the rest this long
SHUTDOWN_SECONDS = 2.0  # on stop, requests in flight get this long to finish (a hang would hold it for an hour)


async def serve(config: ServerConfig, host: str, port: int, ready: asyncio.Future[int], stop: asyncio.Event) -> None:
    """Listen until ``stop`` is set; report the bound port through ``ready``."""
    runner = web.AppRunner(
        create_app(config),
        access_log=None,
        handler_cancellation=True,
        keepalive_timeout=config.read_timeout,  # also how long a connection may take to send its headers
        lingering_time=LINGER_SECONDS,
        shutdown_timeout=SHUTDOWN_SECONDS,
        logger=ONE_LINE_LOG,  # a client's broken HTTP is one line on stderr, not a traceback
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=BACKLOG, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:  # e.g. the port is taken: the caller gets the error through `ready`
            ready.set_exception(exc)
            return
        addresses = runner.addresses  # (host, port, ...) of each listening socket
        ready.set_result(int(addresses[0][1]) if addresses else port)
        await stop.wait()
    finally:
        await runner.cleanup()
