"""The learners' kernels: forked in milliseconds from a warm zygote, ended with the grader, judged from inside.

The zygote has imported ipykernel and agentlab once (2.5 s of CPU a fresh kernel would spend) and forks a new
process per notebook. The kernelspec's command is this file run by path as a stand-in (standard library only),
which asks the zygote for a kernel over a Unix socket (one JSON object a line: ``{"argv", "env", "cwd"}``,
``{"signal": n}``; the answer ``{"exit": status}``) and lives as long as it. Nothing outlives the grader: the
zygote kills a kernel whose stand-in goes, and every kernel when told to stop (SIGTERM) or when its grader is
gone; a kernel whose zygote died anyway exits within a second (ipykernel's parent poller). The zygote has its
own session, so a Ctrl-C at the terminal is the grader's to handle.

``judge`` runs in the grader's cells, in the learner's kernel: it reloads the exercise modules from disk (the
learner may have patched them or redefined ``check``), picks the answers by the check's parameter names
(evaluating the course's check-cell expressions, such as ``tool_seconds=1 * SCALE``) and shows a fresh Feedback,
whose ``application/vnd.agentlab.check+json`` output is all the grader reads.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "agentlab-grader"
MISSING = object()


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


@contextlib.contextmanager
def forked_kernels(env: dict[str, str]) -> Iterator[Callable[[], KernelSpecManager | None]]:
    """Start the zygote; the callable waits until it is ready (meanwhile the grader does its own imports) and
    gives the kernelspec, or None without a zygote. On the way out, the zygote and all its kernels are gone."""
    if not hasattr(os, "fork"):
        yield lambda: None
        return
    folder = Path(tempfile.mkdtemp(prefix="agentlab-zygote-"))
    socket_path = folder / "zygote.sock"
    zygote = subprocess.Popen(
        [sys.executable, "-m", "agentlab.classroom.kernels", "zygote", str(socket_path)],
        env={k: v for k, v in env.items() if k != "JPY_PARENT_PID"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the terminal is the grader's to handle, not the zygote's
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
        zygote.terminate()  # it kills its kernels and waits for them before it exits
        try:
            zygote.wait(timeout=10)
        except subprocess.TimeoutExpired:
            zygote.kill()
            zygote.wait()
        if zygote.stdout is not None:
            zygote.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)


def write_kernelspec(folder: Path, socket_path: Path) -> KernelSpecManager:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, str(Path(__file__)), "stand-in", str(socket_path), "-f", "{connection_file}"],
        "display_name": "agentlab grader (forked)",
        "language": "python",
        "interrupt_mode": "signal",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder / "kernels")])


def stand_in(socket_path: str, kernel_argv: list[str]) -> int:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(socket_path)
    stream = connection.makefile("rwb", buffering=0)

    def send(message: dict[str, Any]) -> None:
        stream.write(json.dumps(message).encode() + b"\n")

    def relay(number: int, _frame: Any) -> None:
        send({"signal": number})

    send({"argv": ["ipykernel_launcher", *kernel_argv], "env": dict(os.environ), "cwd": os.getcwd()})
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, relay)
    for line in stream:
        message = json.loads(line)
        if "exit" in message:
            return int(message["exit"])
    return 1  # the zygote went away without a word


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
    """One conversation, so that openai builds its pydantic models (2.5 s of CPU) here and not in every kernel.
    No thread may outlive it: a forked child has none of its parent's threads."""
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
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["JPY_PARENT_PID"] = str(os.getppid())  # ipykernel exits if the zygote is ever gone
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
        self.stopping = False

    def serve(self, parent: int) -> None:
        """Until the grader that started us says stop (SIGTERM) or is gone; then no kernel of ours is left."""
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        while os.getppid() == parent and not self.stopping:
            for key, _ in self.selector.select(timeout=0.05):
                if key.fileobj is self.listener:
                    connection, _ = self.listener.accept()
                    self.selector.register(connection, selectors.EVENT_READ)
                    self.buffers[connection] = b""
                else:
                    self.read(key.fileobj)  # type: ignore[arg-type]
            self.reap()
        for pid in self.kernels.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while True:  # every child reaped, the killed ones included: none is left behind, not even a zombie
                os.waitpid(-1, 0)

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


def zygote(path: str) -> int:
    preload()
    server = Zygote(path)
    print("ready", flush=True)
    # Nobody reads our stdout after this line: a kernel writing to it would fill the pipe and block.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    server.serve(parent=os.getppid())
    return 0


def judge(exercise: str, namespace: dict[str, Any], expressions: dict[str, str]) -> Any:
    """The fresh Feedback of ``exercise`` on the names in ``namespace`` (a failed one when the check breaks)."""
    exercises = importlib.reload(importlib.import_module("agentlab.exercises"))
    importlib.reload(importlib.import_module("agentlab.exercises._helpers"))
    module = importlib.reload(importlib.import_module(f"agentlab.exercises.ex{exercise}"))
    answers = pick_answers(module.check, namespace, expressions)
    try:
        feedback = module.check(**answers)
    except Exception as exc:  # a strange answer must not hide the verdict: it is a failed check
        feedback = exercises.Feedback(False, (f"the check could not judge your answers: {type(exc).__name__}: {exc}",))
    return exercises.Feedback(bool(feedback.passed), tuple(str(m) for m in feedback.messages), exercise)


def pick_answers(check: Any, namespace: dict[str, Any], expressions: dict[str, str]) -> dict[str, Any]:
    """The check's parameters that the learner's namespace can fill; the others keep the check's default."""
    answers: dict[str, Any] = {}
    for name, parameter in inspect.signature(check).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        value = evaluate(expressions.get(name, name), namespace)
        if value is not MISSING:
            answers[name] = value
    return answers


def evaluate(expression: str, namespace: dict[str, Any]) -> Any:
    try:
        return eval(expression, namespace)  # the course's own expression, on the learner's variables
    except Exception:  # an undefined name is a missing answer, which the check names
        return MISSING


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    sys.exit(zygote(rest[0]) if command == "zygote" else stand_in(rest[0], rest[1:]))
