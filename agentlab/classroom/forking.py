"""Fresh kernels in milliseconds: the grader's kernelspec, whose kernels the zygote forks (zygote.py).

``forked_kernels(env)`` starts the zygote with the kernels' environment, writes a kernelspec whose command is
forked_kernel.py, and yields the KernelSpecManager that finds it; without ``os.fork`` (Windows) or when the
zygote cannot start, it yields None and the grader starts every kernel from scratch instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "agentlab-grader"


@contextmanager
def forked_kernels(env: dict[str, str]) -> Iterator[KernelSpecManager | None]:
    if not hasattr(os, "fork"):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="agentlab-zygote-"))
    socket_path = folder / "zygote.sock"
    zygote_env = {k: v for k, v in env.items() if k != "JPY_PARENT_PID"}
    command = [sys.executable, "-m", "agentlab.classroom.zygote", str(socket_path)]
    zygote = subprocess.Popen(
        command, env=zygote_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        ready = zygote.stdout is not None and zygote.stdout.readline().strip() == b"ready"
        yield write_kernelspec(folder, socket_path) if ready else None
    finally:
        zygote.terminate()
        zygote.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def write_kernelspec(folder: Path, socket_path: Path) -> KernelSpecManager:
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
