"""Starting and stopping the offline server: in a thread, in its own process, and from the CLI."""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agentlab.offline import start, start_process
from agentlab.offline.serve import add_serve_arguments, config_from_args, serve_command


def is_listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def test_thread_server_starts_and_stops() -> None:
    server = start()
    assert server.host == "127.0.0.1" and is_listening(server.port)
    assert get(server.base_url + "/models") == 200
    assert repr(server) == f"OfflineServer('http://127.0.0.1:{server.port}/v1')"
    server.stop()
    assert not is_listening(server.port)
    server.stop()  # a second stop is harmless


def test_context_manager() -> None:
    with start() as server:
        port = server.port
        # A whole request, not a bare connect: a connection accepted in the very last moment before a stop can
        # outlive asyncio 3.11's server shutdown (a ResourceWarning at GC; 3.12 added Server.close_clients).
        assert get(server.base_url + "/models") == 200
    assert not is_listening(port)


def test_a_busy_port_is_a_clear_error_at_once() -> None:
    with start() as server:
        began = time.perf_counter()
        with pytest.raises(RuntimeError, match=f"could not start on 127.0.0.1:{server.port}: OSError: .*in use"):
            start(port=server.port)
        assert time.perf_counter() - began < 5, "the error came only after start()'s own 15 s time-out"
        assert get(server.base_url + "/models") == 200, "the first server still answers"


def test_process_server_starts_and_stops() -> None:
    server = start_process(time_scale=0.01)
    try:
        assert get(server.base_url + "/models") == 200
    finally:
        server.stop()
    assert not is_listening(server.port)


PARENT = """
import os, signal
from agentlab.offline import start_process
server = start_process(time_scale=0.01)
print(server.pid, server.port, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies without stopping its server: no finally, no atexit
"""


def test_a_process_server_ends_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    # stderr to a file: the server inherits it, and a pipe would hold this run until the server ended
    with (tmp_path / "stderr").open("w") as stderr:
        parent = subprocess.run([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert parent.returncode == -signal.SIGKILL, (tmp_path / "stderr").read_text()
    pid, port = (int(word) for word in parent.stdout.split())
    deadline = time.monotonic() + 15  # polled: another process's end cannot be awaited
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_alive(pid):
        os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"the server {pid} outlived the process that started it")
    assert not is_listening(port)


def is_alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its new parent to reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(argv)


def test_remote_hosts_need_an_explicit_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_command(parse("--host", "0.0.0.0")) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert parse().host == "127.0.0.1"


def test_cli_serves_and_warns_for_remote_hosts() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "agentlab", "serve", "--host", "0.0.0.0", "--allow-remote", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("agentlab offline server listening on http://0.0.0.0:")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        assert get(f"http://127.0.0.1:{port}/v1/models") == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "warning" in err and "no authentication" in err


def test_a_thread_server_on_another_host_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="allow_remote=True"):
        start(host="0.0.0.0")


def test_fault_kinds_choose_what_the_rate_draws_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_from_args(parse("--fault-rate", "0.1", "--fault-kinds", "500, 429")).faults.kinds == ("500", "429")
    assert config_from_args(parse()).faults.kinds == ("500", "429", "hang")
    with pytest.raises(SystemExit):
        parse("--fault-kinds", "500,teapot")
    assert "unknown fault kind ['teapot']: use some of 500,429,hang" in capsys.readouterr().err


def test_a_thousand_connections_are_queued_while_the_server_is_busy() -> None:
    """The listen backlog (BACKLOG = 4096, above the usual 128) holds 1000 connections that arrive at once.

    The server process is paused (SIGSTOP) while 1000 sockets connect, so nothing is accepted: the kernel
    completes only as many connections as the backlog holds (with 128: 129, measured) and drops the others'
    SYNs, which retry only after a second. Then the server resumes and answers every one.
    """
    server = start_process(time_scale=0.01)
    assert server.pid is not None
    sockets = [socket.socket() for _ in range(1000)]
    try:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            for s in sockets:
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", server.port))
            time.sleep(0.5)
            poller = select.poll()
            for s in sockets:
                poller.register(s, select.POLLOUT)
            writable = {fd for fd, events in poller.poll(0) if events & select.POLLOUT}
            connected = sum(
                s.fileno() in writable and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for s in sockets
            )
        finally:
            os.kill(server.pid, signal.SIGCONT)
        for s in sockets:
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: offline\r\nConnection: close\r\n\r\n")
        answered = sum(s.recv(64).startswith(b"HTTP/1.1 200") for s in sockets)
    finally:
        for s in sockets:
            s.close()
        server.stop()
    print(f"\n1000 connections to a paused server: {connected} queued by the kernel, then {answered} answered 200")
    assert connected == 1000
    assert answered == 1000


STARTS_AND_STOPS = """
from agentlab.offline import start_process
start_process(time_scale=0.01).stop()
"""


def test_a_process_server_stops_cleanly_and_prints_nothing(tmp_path: Path) -> None:
    # the server inherits this stderr: a server that stopped by a signal while its stdin reader waited
    # printed "Fatal Python error: ... could not acquire lock for <stdin>" and aborted
    with (tmp_path / "stderr").open("w") as stderr:
        done = subprocess.run([sys.executable, "-c", STARTS_AND_STOPS], stderr=stderr, timeout=60)
    assert done.returncode == 0
    assert (tmp_path / "stderr").read_text() == ""
