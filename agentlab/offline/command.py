"""``python -m agentlab serve``: its flags, the ServerConfig they make, and the command itself.

A feature adds its flag in ``add_serve_arguments`` and passes it on in ``config_from_args`` (with ``getattr(args,
name, default)``, so that a Namespace built by hand keeps working). A value that would hang or misbehave the server
is refused here, at start, with one line that says what to set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from agentlab.offline.latency import FAULT_KINDS, FaultPlan, LatencyModel, ServerConfig, config_from_env
from agentlab.offline.ratelimit import add_limit_arguments
from agentlab.offline.serving import LOCAL_HOSTS, READY_LINE, serve

__all__ = ["add_serve_arguments", "config_from_args", "serve_command"]


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
        default=FAULT_KINDS,
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
        "--batch-seconds",
        type=float,
        default=None,
        help="how long one batch of the Batch API takes, before the time scale (default 2)",
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
        batch_seconds=getattr(args, "batch_seconds", None) or base.batch_seconds,
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
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown fault kind {unknown or text!r}: use some of {','.join(FAULT_KINDS)}")
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
        ready: asyncio.Future[int] = loop.create_future()
        task = loop.create_task(serve(config, args.host, args.port, ready, stop))
        port = await ready
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"{READY_LINE}http://{host}:{port}/v1", flush=True)
        await task

    asyncio.run(main())
    return 0
