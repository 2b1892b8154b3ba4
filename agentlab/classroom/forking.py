"""Fresh kernels in milliseconds: the grader's kernelspec, whose kernels the zygote forks (zygote.py).

``forked_kernels(env)`` starts the zygote with the kernels' environment and yields a callable that waits for it,
writes a kernelspec whose command is forked_kernel.py, and returns the KernelSpecManager that finds it; without
``os.fork`` (Windows) or when the zygote cannot start, it returns None and every kernel starts from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "agentlab-grader"


def kernel_environment(server_url: str, time_scale: float) -> dict[str, str]:
    """The learner's kernel: offline, on the shared server, at the grader's time scale, with no keys."""
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_API_KEY", "_TOKEN"))}
    env.pop("NBGRADER_EXECUTION", None)
    env.update(
        AGENTLAB_BACKEND="offline",
        AGENTLAB_OFFLINE_URL=server_url,
        AGENTLAB_TIME_SCALE=str(time_scale),
        MPLBACKEND="Agg",
    )
    return env


@contextmanager
def forked_kernels(env: dict[str, str]) -> Iterator[Callable[[], KernelSpecManager | None]]:
    """Start the zygote at once; the callable waits until it is ready (meanwhile the grader does its own
    imports) and gives the kernelspec, or None when there is no zygote."""
    if not hasattr(os, "fork"):
        yield lambda: None
        return
    folder = Path(tempfile.mkdtemp(prefix="agentlab-zygote-"))
    socket_path = folder / "zygote.sock"
    zygote_env = {k: v for k, v in env.items() if k != "JPY_PARENT_PID"}
    command = [sys.executable, "-m", "agentlab.classroom.zygote", str(socket_path)]
    zygote = subprocess.Popen(
        command, env=zygote_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    found: list[KernelSpecManager | None] = []

    def kernels() -> KernelSpecManager | None:
        if not found:
            ready = zygote.stdout is not None and zygote.stdout.readline().strip() == b"ready"
            found.append(write_kernelspec(folder, socket_path) if ready else None)
        return found[0]

    try:
        yield kernels
    finally:
        zygote.terminate()
        zygote.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def write_kernelspec(folder: Path, socket_path: Path) -> KernelSpecManager:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    stand_in = Path(__file__).with_name("forked_kernel.py")
    kernel = {
        "argv": [sys.executable, str(stand_in), str(socket_path), "-f", "{connection_file}"],
        "display_name": "agentlab grader (forked)",
        "language": "python",
        "interrupt_mode": "signal",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
