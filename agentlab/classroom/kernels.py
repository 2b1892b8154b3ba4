"""The learners' kernels: forked in milliseconds from a warm zygote, sandboxed, ended with the grader (what
their answers send back, and how the grader judges it, is ``answers.py``).

The zygote has imported ipykernel and agentlab once (2.5 s of CPU a fresh kernel would spend) and forks a new
process per notebook. The kernelspec's command is this file run by path as a stand-in (standard library only),
which asks the zygote for a kernel over a Unix socket (one JSON object a line: ``{"argv", "env", "cwd"}``,
``{"signal": n}``; the answer ``{"exit": status}``) and lives as long as it. Nothing outlives the grader: the
zygote kills a kernel whose stand-in goes, and every kernel when told to stop (SIGTERM) or when its grader is
gone; a kernel whose zygote died anyway exits within a second (ipykernel's parent poller). The zygote has its
own session, so a Ctrl-C at the terminal is the grader's to handle.

The sandbox: the zygote runs under bubblewrap (``bwrap``, Debian's ``bubblewrap``, a well-kept sandbox rather
than one of ours) in its own user, PID and mount namespaces: the whole file system read-only, an empty ``/tmp``,
and the submissions, the report folder, the solutions, the checkout's ``.git``, Jupyter's connection files and
the home folder (but for Python's own folders in it) hidden under empty folders; the network is shared, so that
kernels reach the offline server and nbclient on loopback. Each forked kernel then goes one step further with
the same system calls bwrap makes (``unshare``, ``mount``): a PID namespace of its own (it sees no other kernel, and
none of its processes outlives it), a private ``/tmp`` that is also its working folder, and no capabilities
left, so that it cannot undo any of this. Its connection file comes through the socket, not the file system.
"""

from __future__ import annotations

import contextlib
import ctypes
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
KERNEL_OUTPUT_LIMIT = 4_000_000  # characters a forked kernel prints at most (the grader keeps 2,000,000)
PRIVATE = "/tmp"  # a sandboxed kernel's own empty folder: its /tmp, its working folder and its home


def is_secret(key: str) -> bool:
    """An API key, token, password or credential, or any OpenAI setting: grading runs offline without them."""
    upper = key.upper()
    return upper.startswith("OPENAI_") or any(w in upper for w in ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"))


def kernel_environment(server_url: str, time_scale: float) -> dict[str, str]:
    """The learner's kernel: offline, on the shared server, at the grader's time scale, with no secrets."""
    env = {key: value for key, value in os.environ.items() if not is_secret(key)}
    env.pop("NBGRADER_EXECUTION", None)
    env.update(
        AGENTLAB_BACKEND="offline",
        AGENTLAB_OFFLINE_URL=server_url,
        AGENTLAB_TIME_SCALE=str(time_scale),
        MPLBACKEND="Agg",
    )
    return env


def sandbox_problem(hidden: list[Path] | None = None) -> str:
    """Why the sandbox cannot run Python here with ``hidden`` hidden ("" when it can): bwrap missing, or
    refused by this system."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux, not {sys.platform}"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed"
    temporary = Path(tempfile.gettempdir()).resolve()
    if any(Path(p).resolve().is_relative_to(temporary) for p in (sys.prefix, sys.executable, __file__)):
        return (
            f"this Python or agentlab is installed under {temporary}, which every sandboxed kernel gets as its own "
            "empty folder: install into a virtual environment outside it to grade in the sandbox"
        )
    package = str(Path(__file__).resolve().parent.parent)
    found = "import os, sys; sys.exit(not os.path.isdir(sys.argv[1]))"  # Python runs, and sees agentlab
    probe = [*sandbox_command(hidden_folders(hidden or []), None), "--", sys.executable, "-I", "-c", found, package]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not start: {exc}"
    lines = done.stderr.strip().splitlines()
    return "" if done.returncode == 0 else f"bwrap refused to start: {lines[-1] if lines else done.returncode}"


def sandbox_command(hidden: list[Path], shared: Path | None) -> list[str]:
    """bwrap's command line: everything read-only, a fresh /tmp, the home folder and ``hidden`` under empty
    folders (Python's own folders in the home bound again, read-only), ``shared`` (the zygote's socket folder)
    bound read-write; the network stays."""
    command = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    command += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    home = Path.home().resolve()
    if home != Path("/") and home.is_dir() and not home.is_relative_to(tempfile.gettempdir()):
        command += ["--tmpfs", str(home)]
        for folder in python_folders(home, hidden):
            command += ["--ro-bind", str(folder), str(folder)]
    for path in hidden:
        if path.is_dir() and not path.resolve().is_relative_to(tempfile.gettempdir()):
            command += ["--tmpfs", str(path.resolve())]
    if shared is not None:
        command += ["--bind", str(shared), str(shared)]
    return command


def python_folders(home: Path, hidden: list[Path]) -> list[Path]:
    """The folders under ``home`` that Python needs (its installation, the venv, what is on sys.path), none
    inside ``hidden``, outermost first."""
    wanted = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent), *sys.path]
    found = {Path(p).resolve() for p in wanted if p and Path(p).is_dir()}
    found = {p for p in found if p.is_relative_to(home) and p != home}
    found = {p for p in found if not any(p.is_relative_to(h.resolve()) for h in hidden)}
    return sorted(p for p in found if not any(p != q and p.is_relative_to(q) for q in found))


def hidden_folders(hidden: list[Path]) -> list[Path]:
    """The folders a learner must not see besides the home folder: ``hidden`` and Jupyter's connection files."""
    from jupyter_core.paths import jupyter_runtime_dir

    return [*hidden, Path(jupyter_runtime_dir())]


@contextlib.contextmanager
def forked_kernels(
    env: dict[str, str], scratch: Path | None = None, hidden: list[Path] | None = None, *, sandboxed: bool = False
) -> Iterator[Callable[[], KernelSpecManager | None]]:
    """Start the zygote (under bwrap when ``sandboxed``, with ``hidden`` hidden) with its socket in ``scratch``
    (else a temporary folder of its own); the callable waits until it is ready (meanwhile the grader does its own
    imports) and gives the kernelspec, or None without a zygote. On the way out, the zygote and all its kernels
    are gone."""
    if not hasattr(os, "fork"):
        yield lambda: None
        return
    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentlab-zygote-")))
        yield stack.enter_context(zygote_process(env, scratch, hidden or [], sandboxed))


@contextlib.contextmanager
def zygote_process(
    env: dict[str, str], scratch: Path, hidden: list[Path], sandboxed: bool
) -> Iterator[Callable[[], KernelSpecManager | None]]:
    folder = scratch / "zygote"
    folder.mkdir(mode=0o700)
    socket_path = folder / "zygote.sock"
    sandbox = [*sandbox_command(hidden_folders(hidden), folder), "--"] if sandboxed else []
    zygote = subprocess.Popen(
        [*sandbox, sys.executable, "-m", "agentlab.classroom.kernels", "zygote", str(socket_path), str(sandboxed)],
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
            if sandboxed and not ready:  # never a quiet fall back to kernels outside the sandbox
                from agentlab.errors import AgentLabError  # here: the stand-in runs this file with no agentlab

                raise AgentLabError("the sandbox's kernels did not start: grade with --no-fork to grade without it")
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

    connection_file = kernel_argv[kernel_argv.index("-f") + 1]
    with open(connection_file, encoding="utf-8") as file:  # a sandboxed kernel cannot see Jupyter's folder
        keys = file.read()
    request = {"argv": ["ipykernel_launcher", *kernel_argv], "env": dict(os.environ), "cwd": os.getcwd()}
    send({**request, "connection": keys})
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
    import agentlab.classroom.answers  # noqa: F401  (the grader's cells import it)
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


def start_kernel(request: dict[str, Any], keep: list[socket.socket], sandboxed: bool) -> int:
    """Fork a kernel for ``request`` (into its own namespaces when ``sandboxed``); the child never returns."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        for sock in keep:
            sock.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        if sandboxed:
            enter_private_namespaces()
            request = privately(request)
        else:
            os.environ["JPY_PARENT_PID"] = str(os.getppid())  # ipykernel exits if the zygote is ever gone
        os.chdir(request["cwd"])
        sys.argv = list(request["argv"])
        from ipykernel.kernelapp import IPKernelApp

        cap_output(KERNEL_OUTPUT_LIMIT)
        IPKernelApp.launch_instance(argv=sys.argv[1:])
        status = 0
    finally:
        os._exit(status)


LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38


def enter_private_namespaces() -> None:
    """In the forked child: a new mount and PID namespace, then fork once more. This process stays behind to
    pass signals on and exit as the kernel does; the kernel (PID 1 there, killed with it) goes on to return."""
    libc_call("unshare", CLONE_NEWNS | CLONE_NEWPID)
    kernel = os.fork()
    if kernel:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, lambda n, _: os.kill(kernel, n))
        while True:
            with contextlib.suppress(InterruptedError):
                _, status = os.waitpid(kernel, 0)
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    libc_call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL)
    libc_call("mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    libc_call("mount", b"tmpfs", PRIVATE.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, None)
    libc_call("mount", b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV, None)
    drop_capabilities()


def drop_capabilities() -> None:
    """No capability left (bounding set, then effective, permitted and inheritable), and none to be gained."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    for capability in range(64):
        with contextlib.suppress(OSError):  # past the last capability this kernel knows
            libc_call("prctl", PR_CAPBSET_DROP, capability, 0, 0, 0)
    libc_call("capset", ctypes.byref(Header(0x20080522, 0)), ctypes.byref((Data * 2)()))
    libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def libc_call(name: str, *arguments: Any) -> None:
    if LIBC is None or getattr(LIBC, name)(*arguments) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{name}: {os.strerror(number)}")


def privately(request: dict[str, Any]) -> dict[str, Any]:
    """The request, in the kernel's private folder: its connection file written there, and it is home."""
    connection = Path(PRIVATE) / "kernel.json"
    connection.write_text(request["connection"], encoding="utf-8")
    argv = list(request["argv"])
    argv[argv.index("-f") + 1] = str(connection)
    os.environ.update(HOME=PRIVATE, TMPDIR=PRIVATE)
    argv.append("--HistoryManager.enabled=False")  # a fresh home: no history file to create
    os.environ.pop("JPY_PARENT_PID", None)  # its parent is outside its PID namespace: the poller would exit
    return {**request, "argv": argv, "cwd": PRIVATE}


def cap_output(limit: int) -> None:
    """A forked kernel's printed output stops after ``limit`` characters, so that a notebook that prints 100 MB
    by mistake does not send it all to the grader (which keeps fewer still, and says so). Learner code could
    undo this in its own kernel; what the grader keeps is capped in the grader (execute.CappedClient)."""
    from ipykernel.iostream import OutStream

    write = OutStream.write
    sent = [0]

    def capped(self: OutStream, text: str) -> int:
        left = limit - sent[0]
        sent[0] += len(text)
        if left > 0:
            write(self, text[:left])
        return len(text)

    OutStream.write = capped  # type: ignore[method-assign,assignment]


class Zygote:
    def __init__(self, path: str, sandboxed: bool) -> None:
        self.sandboxed = sandboxed
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
            self.kernels[connection] = start_kernel(message, [self.listener, *self.buffers], self.sandboxed)
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


def zygote(path: str, sandboxed: bool) -> int:
    preload()
    server = Zygote(path, sandboxed)
    print("ready", flush=True)
    # Nobody reads our stdout after this line: a kernel writing to it would fill the pipe and block.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    server.serve(parent=os.getppid())
    return 0


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    sys.exit(zygote(rest[0], rest[1] == "True") if command == "zygote" else stand_in(rest[0], rest[1:]))
