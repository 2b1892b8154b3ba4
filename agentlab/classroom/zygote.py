"""The zygote: one process that has imported ipykernel and agentlab once, and forks a fresh kernel per notebook.

A fresh kernel costs about 2.5 s of CPU before the first cell, most of it ``import agentlab`` (openai) and
ipykernel; forking a process that already did that costs a few milliseconds. Each child is a new process that
has run no learner's code, with the environment and folder of the kernel it stands for (forked_kernel.py).
Protocol, one JSON object a line on a Unix socket: ``{"argv", "env", "cwd"}`` starts a kernel,
``{"signal": n}`` signals it; the zygote answers ``{"exit": status}`` when it ends, and kills it when the
connection closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any


def preload() -> None:
    """Everything a lesson's first cell imports, so that a forked kernel has it already."""
    import ipykernel.kernelapp  # noqa: F401
    import IPython  # noqa: F401

    import agentlab  # noqa: F401
    import agentlab.charts
    import agentlab.exercises  # noqa: F401
    import agentlab.tools.math  # noqa: F401

    # One chart drawn: matplotlib loads its fonts on the first draw (about 0.5 s). Charts draw on the Agg
    # canvas, never through pyplot, so no backend is chosen here: each kernel still picks its own.
    agentlab.charts.bars(["warm-up"], [1.0], title="warm-up")._repr_png_()  # type: ignore[attr-defined]
    warm_up()


def warm_up() -> None:
    """One conversation with the grader's server: openai builds its pydantic models on the first response
    (about 2.5 s of CPU), so the zygote does it once instead of every kernel. No thread may outlive it: a
    forked child has none of its parent's threads."""
    if not os.environ.get("AGENTLAB_OFFLINE_URL"):
        return
    import asyncio
    import threading

    from agentlab import Agent

    # no tools: a sync tool would start agentlab's tool threads, which a forked child would lack
    asyncio.run(Agent(name="warm-up", instructions="Answer.").run("What is 1 + 1?"))
    if threading.active_count() != 1:
        raise RuntimeError(f"{threading.active_count() - 1} thread(s) still run after the warm-up: cannot fork")


def start_kernel(request: dict[str, Any], keep: list[socket.socket]) -> int:
    """Fork a kernel for ``request``; the child never returns."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        for sock in keep:
            sock.close()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop("JPY_PARENT_PID", None)  # the kernel's parent is the zygote, which watches it
        sys.argv = list(request["argv"])
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=sys.argv[1:])
        status = 0
    finally:
        os._exit(status)


class Zygote:
    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(128)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.buffers: dict[socket.socket, bytes] = {}
        self.kernels: dict[socket.socket, int] = {}

    def serve(self, parent: int) -> None:
        """Until the grader that started us is gone."""
        while os.getppid() == parent:
            for key, _ in self.selector.select(timeout=0.05):
                if key.fileobj is self.listener:
                    connection, _ = self.listener.accept()
                    self.selector.register(connection, selectors.EVENT_READ)
                    self.buffers[connection] = b""
                else:
                    self.read(key.fileobj)  # type: ignore[arg-type]
            self.reap()
        for pid in self.kernels.values():
            os.kill(pid, signal.SIGKILL)

    def read(self, connection: socket.socket) -> None:
        data = connection.recv(1 << 20)
        if not data:  # the stand-in was killed: so is its kernel
            if (pid := self.kernels.pop(connection, None)) is not None:
                os.kill(pid, signal.SIGKILL)
            self.close(connection)
            return
        self.buffers[connection] += data
        while b"\n" in self.buffers[connection]:
            line, self.buffers[connection] = self.buffers[connection].split(b"\n", 1)
            self.handle(connection, json.loads(line))

    def handle(self, connection: socket.socket, message: dict[str, Any]) -> None:
        if "argv" in message:
            self.kernels[connection] = start_kernel(message, [self.listener, *self.buffers])
        elif "signal" in message and connection in self.kernels:
            os.kill(self.kernels[connection], int(message["signal"]))

    def reap(self) -> None:
        """Tell each stand-in whose kernel ended how it ended."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for connection, kernel in list(self.kernels.items()):
                if kernel == pid:
                    del self.kernels[connection]
                    with contextlib.suppress(OSError):  # the stand-in may be gone already
                        connection.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                    self.close(connection)

    def close(self, connection: socket.socket) -> None:
        self.selector.unregister(connection)
        self.buffers.pop(connection, None)
        connection.close()


def main(path: str) -> int:
    preload()
    zygote = Zygote(path)
    print("ready", flush=True)
    # Nobody reads our stdout after this line: a kernel writing to it would fill the pipe and block.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    zygote.serve(parent=os.getppid())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
