"""Run the offline server: in a background thread (``start``), in its own process (``start_process``), or from
the command line (``python -m agentlab serve``, whose flags are in ``command.py``).

It listens on 127.0.0.1 by default. Any other host needs ``--allow-remote``: the server has no authentication.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import subprocess
import sys
import threading
from collections.abc import Callable
from types import TracebackType

from agentlab.offline.command import add_serve_arguments, config_from_args, serve_command
from agentlab.offline.latency import FAULT_KINDS, ServerConfig, config_from_env
from agentlab.offline.ratelimit import check_limit
from agentlab.offline.serving import LOCAL_HOSTS, READY_LINE, serve

__all__ = ["OfflineServer", "start", "start_process", "add_serve_arguments", "config_from_args", "serve_command"]


class OfflineServer:
    """A running offline server. ``base_url`` is what ``AsyncOpenAI(base_url=...)`` takes."""

    def __init__(self, host: str, port: int, stopper: Callable[[], None], pid: int | None = None) -> None:
        self.host, self.port = host, port
        self.pid = pid  # the server's own process, when it runs in one (start_process)
        self._stopper: Callable[[], None] | None = stopper

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        """Stop the server and wait until its port is closed. Safe to call twice."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()

    def __enter__(self) -> OfflineServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OfflineServer({self.base_url!r})"


def start(
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    rpm: int | None = None,
    tpm: int | None = None,
) -> OfflineServer:
    """Start the server in a daemon thread with its own event loop; return once it is listening.

    It listens on 127.0.0.1. Another host needs ``allow_remote=True``: the server has no authentication.
    ``rpm`` and ``tpm`` set requests and tokens per minute (``ratelimit.py``) over those of ``config``.
    """
    if host not in LOCAL_HOSTS and not allow_remote:
        raise ValueError(
            f"host={host!r} would expose the offline server to other machines; "
            "pass allow_remote=True if you really mean it"
        )
    config = config or config_from_env()
    rpm, tpm = check_limit("rpm", rpm) or config.rpm, check_limit("tpm", tpm) or config.tpm
    config = dataclasses.replace(config, rpm=rpm, tpm=tpm)  # start(rpm=..., tpm=...): see ratelimit.py
    return serve_in_thread(config, host, port)


def serve_in_thread(config: ServerConfig, host: str, port: int) -> OfflineServer:
    """Run ``serve`` on a new event loop in a daemon thread; return once it listens (or say why it cannot)."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    # The port (or the reason it could not listen) crosses from the server's thread to ours through a
    # thread-safe future, which is set even when the server's loop has already stopped.
    bound: concurrent.futures.Future[int] = concurrent.futures.Future()

    async def run() -> None:
        ready: asyncio.Future[int] = loop.create_future()
        ready.add_done_callback(lambda done: relay(done, bound))
        try:
            await serve(config, host, port, ready, stop)
        except Exception as exc:  # it failed before it listened: say why in the caller's thread
            if not bound.done():
                bound.set_exception(exc)

    thread = threading.Thread(
        target=loop.run_until_complete, args=(run(),), name="agentlab-offline-server", daemon=True
    )
    thread.start()
    try:
        bound_port = bound.result(timeout=15)
    except BaseException as exc:
        thread.join(timeout=5)
        loop.close()
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise RuntimeError(f"the offline server could not start on {host}:{port}: {reason}") from exc

    def stop_thread() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()

    return OfflineServer(host, bound_port, stop_thread)


def relay(source: asyncio.Future[int], target: concurrent.futures.Future[int]) -> None:
    """Copy the result or the exception of an asyncio future to a thread-safe one."""
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


def start_process(
    *,
    time_scale: float = 1.0,
    seed: int = 0,
    fault_rate: float = 0.0,
    fault_kinds: tuple[str, ...] = FAULT_KINDS,
    base_latency: float | None = None,
    per_token: float | None = None,
    jitter: float | None = None,
    upstream: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> OfflineServer:
    """Start ``python -m agentlab serve`` as its own process (its own CPU), on a free port.

    With ``upstream`` it is the proxy in front of that API (``serve --upstream URL``, see ``proxy.py``).
    """
    command = [sys.executable, "-m", "agentlab", "serve", "--port", "0", "--time-scale", str(time_scale)]
    command += ["--seed", str(seed), "--fault-rate", str(fault_rate), "--fault-kinds", ",".join(fault_kinds)]
    flags = (("--base-latency", base_latency), ("--per-token", per_token), ("--jitter", jitter))
    for flag, value in (*flags, ("--upstream", upstream), ("--rpm", rpm), ("--tpm", tpm)):
        if value is not None:
            command += [flag, str(value)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    port = ready_port(process)

    def stop_process() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    return OfflineServer("127.0.0.1", port, stop_process, pid=process.pid)


def ready_port(process: subprocess.Popen[str]) -> int:
    """The port in the server process's ready line; kill it and say what it printed when there is none."""
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith(READY_LINE):
        process.kill()
        raise RuntimeError(f"the offline server process did not start (it printed {line!r})")
    return int(line.strip().rsplit(":", 1)[1].split("/")[0])
