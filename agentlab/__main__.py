"""The command line: ``python -m agentlab demo | serve | bench | grade | handout``.

- ``demo``: five math conversations serially, concurrently, then settled with one failure: a timing table, a PNG.
- ``serve``: the offline Responses API server in its own process.
- ``bench``: the benchmark of ``agentlab/bench`` (import time, agentlab against a raw loop and the Agents SDK, …).
- ``grade SUBMISSIONS --out REPORT``: a class's exercise notebooks, graded into one report.
- ``handout --out DIR``: the lessons and exercises for learners (``--with-solutions`` for teachers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentlab.classroom.cli import add_classroom_commands
from agentlab.offline.serve import add_serve_arguments, serve_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serial vs concurrent vs settled on 5 math conversations")
    demo.add_argument("--out", type=Path, default=Path("agentlab-demo-timeline.png"), help="where to write the PNG")
    add_serve_arguments(commands.add_parser("serve", help="run the offline Responses API server"))
    commands.add_parser("bench", help="run the benchmark (agentlab bench --help for its options)", add_help=False)
    add_classroom_commands(commands)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return bench_command(rest)  # only the benchmark takes arguments it parses itself
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "serve":
        return serve_command(args)
    if args.command in ("grade", "handout"):
        return int(args.run(args))
    from agentlab.demo import run_demo  # imported late: matplotlib is slow to import

    return run_demo(args.out)


def bench_command(argv: list[str]) -> int:
    from agentlab.bench import main as bench_main  # the top layer: loaded only for this command

    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main())
