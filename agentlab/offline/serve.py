"""Running the offline server: in a background thread (``start``), in its own process (``start_process``), or from
the command line (``python -m agentlab serve``, its flags in ``add_serve_arguments``).

``serve`` is the one place that sets up aiohttp's runner, with a production server's settings: a read time-out
(``ServerConfig.read_timeout``) for headers, bodies and idle connections, a short linger and a short graceful
shutdown, and one line of log per broken request. It listens on 127.0.0.1 by default; any other host needs
``--allow-remote`` (``allow_remote=True``): the server has no authentication. A flag whose value would hang or
misbehave the server is refused at start, with one line that says what to set.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from aiohttp import web

from agentlab.offline.app import ONE_LINE_LOG, create_app
from agentlab.offline.config import RANDOM_FAULTS, FaultPlan, LatencyModel, ServerConfig, config_from_env, with_limits
from agentlab.offline.proxy import create_proxy_app
from agentlab.offline.ratelimit import add_limit_arguments

__all__ = ["OfflineServer", "start", "start_process", "serve", "add_serve_arguments", "config_from_args"]
__all__ += ["serve_command"]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
BACKLOG = 4096  # above the default 128, so that 1000 simultaneous connections are all accepted
READY_LINE = "agentlab offline server listening on "
LINGER_SECONDS = 1.0  # after an answer sent before its body was read (413, 408), read and drop the rest this long
SHUTDOWN_SECONDS = 2.0  # on stop, requests in flight get this long to finish (a hang would hold it for an hour)


async def serve(config: ServerConfig, host: str, port: int, ready: asyncio.Future[int], stop: asyncio.Event) -> None:
    """Listen until ``stop`` is set; report the bound port through ``ready``."""
    runner = web.AppRunner(
        create_proxy_app(config) if config.upstream else create_app(config),
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
    data_dir: str | os.PathLike[str] | None = None,
) -> OfflineServer:
    """Start the server in a daemon thread with its own event loop; return once it is listening.

    It listens on 127.0.0.1. Another host needs ``allow_remote=True``: the server has no authentication.
    ``rpm`` and ``tpm`` set requests and tokens per minute (``ratelimit.py``) over those of ``config``.
    ``data_dir``: a folder that keeps the files and batches, for a server started later on it (``batches.py``).
    """
    if host not in LOCAL_HOSTS and not allow_remote:
        raise ValueError(
            f"host={host!r} would expose the offline server to other machines; "
            "pass allow_remote=True if you really mean it"
        )
    config = with_limits(config, rpm, tpm)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_folder(data_dir))
    return serve_in_thread(config, host, port)


def data_folder(path: str | os.PathLike[str]) -> str:
    """The folder for the server's files and batches, made if need be; a ValueError that says what to pass if
    it cannot be one."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"the data folder (--data-dir, data_dir=) {os.fspath(path)!r} cannot hold the server's files and "
            f"batches ({exc.strerror or exc}): name a folder you can write to"
        ) from None
    return os.fspath(path)


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
    fault_kinds: tuple[str, ...] = RANDOM_FAULTS,
    base_latency: float | None = None,
    per_token: float | None = None,
    jitter: float | None = None,
    upstream: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> OfflineServer:
    """Start ``python -m agentlab serve`` as its own process (its own CPU), on a free port.

    The server ends with this process, however this process ends: it holds the write end of the server's
    standard input, and the server stops when that closes (``--until-stdin-closes``), as it does when this
    process dies, even by SIGKILL.

    With ``upstream`` it is the proxy in front of that API (``serve --upstream URL``, see ``proxy.py``); with
    ``data_dir`` it keeps its files and batches in that folder (``serve --data-dir DIR``).
    """
    command = [sys.executable, "-m", "agentlab", "serve", "--until-stdin-closes", "--port", "0"]
    command += ["--time-scale", str(time_scale), "--seed", str(seed), "--fault-rate", str(fault_rate)]
    command += ["--fault-kinds", ",".join(fault_kinds)]
    flags = (("--base-latency", base_latency), ("--per-token", per_token), ("--jitter", jitter))
    for flag, value in (*flags, ("--upstream", upstream), ("--rpm", rpm), ("--tpm", tpm), ("--data-dir", data_dir)):
        if value is not None:
            command += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = ready_port(process)

    def stop_process() -> None:
        if process.stdin:
            process.stdin.close()  # the end of its input: the server stops as it would if this process died
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in its shutdown
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


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a host other than 127.0.0.1")
    parser.add_argument("--time-scale", type=float, default=None, help="multiply every delay (AGENTLAB_TIME_SCALE)")
    parser.add_argument("--seed", type=int, default=None, help="seed for jitter and faults (AGENTLAB_SEED)")
    parser.add_argument("--fault-rate", type=float, default=None, help="share of requests that fail (0..1)")
    parser.add_argument(
        "--fault-kinds",
        type=parse_fault_kinds,
        default=RANDOM_FAULTS,
        help="which faults the rate draws from, comma-separated (default 500,429,hang)",
    )
    parser.add_argument("--base-latency", type=float, default=None, help="seconds per model turn before scaling")
    parser.add_argument("--per-token", type=float, default=None, help="seconds per output token before scaling")
    parser.add_argument("--jitter", type=float, default=None, help="relative jitter of the latency (0..1)")
    parser.add_argument(
        "--no-markers",
        dest="markers",
        action="store_false",
        help="treat [duration=…], [fault=…], [mistake=…] and [loop] as plain text, as a real model would",
    )
    parser.add_argument(
        "--upstream",
        type=parse_upstream,
        default=None,
        metavar="URL",
        help="proxy mode: forward to this API (e.g. https://api.openai.com/v1), applying the markers here",
    )
    add_limit_arguments(parser)  # --rpm, --tpm (ratelimit.py)
    parser.add_argument(
        "--until-stdin-closes",
        action="store_true",
        help="also stop when standard input closes (start_process: the server ends with the process that started it)",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=None,
        help="how long one batch of the Batch API takes, before the time scale (default 2)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="keep files and batches in this folder, for a server started later on it (default: in memory only)",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    base = config_from_env()
    latency, faults = base.latency, base.faults
    return ServerConfig(
        LatencyModel(
            base=latency.base if args.base_latency is None else args.base_latency,
            per_output_token=latency.per_output_token if args.per_token is None else args.per_token,
            jitter=latency.jitter if args.jitter is None else args.jitter,
            seed=latency.seed if args.seed is None else args.seed,
            time_scale=latency.time_scale if args.time_scale is None else args.time_scale,
        ),
        FaultPlan(
            rate=faults.rate if args.fault_rate is None else args.fault_rate,
            kinds=args.fault_kinds,
            seed=faults.seed if args.seed is None else args.seed,
        ),
        markers=getattr(args, "markers", True),
        upstream=getattr(args, "upstream", None),
        rpm=getattr(args, "rpm", None) or base.rpm,
        tpm=getattr(args, "tpm", None) or base.tpm,
        batch_seconds=base.batch_seconds if getattr(args, "batch_seconds", None) is None else args.batch_seconds,
        data_dir=None if getattr(args, "data_dir", None) is None else data_folder(args.data_dir),
    )


def parse_upstream(text: str) -> str:
    """An http(s) URL such as ``https://api.openai.com/v1``; anything else is an argparse error that says so."""
    url = text.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url.split("//", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"--upstream {text!r} is not an http(s) URL: use e.g. https://api.openai.com/v1"
        )
    return url


def parse_fault_kinds(text: str) -> tuple[str, ...]:
    """``"500,429"`` → ``("500", "429")``; an unknown kind is an argparse error that lists the known ones."""
    kinds = tuple(kind.strip().lower() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in RANDOM_FAULTS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind {unknown or text!r}: use some of {','.join(RANDOM_FAULTS)}"
        )
    return kinds


def serve_command(args: argparse.Namespace) -> int:
    """``python -m agentlab serve``: print one ready line, serve until SIGINT/SIGTERM, exit 0."""
    if args.host not in LOCAL_HOSTS and not args.allow_remote:
        print(
            f"error: --host {args.host} would expose the offline server to other machines. "
            "Add --allow-remote if you really mean it.",
            file=sys.stderr,
        )
        return 2
    if args.host not in LOCAL_HOSTS:
        print(
            f"warning: the offline server listens on {args.host}: other machines can reach it, "
            "and it has no authentication.",
            file=sys.stderr,
        )
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        if args.until_stdin_closes:  # a thread, not the loop: reading a pipe works so on every platform
            threading.Thread(target=stop_at_end_of_input, args=(loop, stop), daemon=True).start()
        ready: asyncio.Future[int] = loop.create_future()
        task = loop.create_task(serve(config, args.host, args.port, ready, stop))
        port = await ready
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"{READY_LINE}http://{host}:{port}/v1", flush=True)
        await task

    asyncio.run(main())
    return 0


def stop_at_end_of_input(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Read standard input to its end (the parent closed it, or died), then stop the server.

    ``os.read`` on descriptor 0, not ``sys.stdin``: this daemon thread, blocked inside the buffered reader,
    would hold its lock, and Python aborts at shutdown ("Fatal Python error: ... could not acquire lock for
    <stdin>") when the server stops by a signal while the thread still waits.
    """
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    with contextlib.suppress(RuntimeError):  # the loop has already closed: the server is stopping anyway
        loop.call_soon_threadsafe(stop.set)
