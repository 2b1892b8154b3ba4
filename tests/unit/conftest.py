"""The fast tier runs in this process: the model answers through ``agentlab.offline.transport()``, with no socket.

Two autouse fixtures make that so for every test here:
- ``in_process_model``: every offline client that ``make_client`` makes (and so each loop's ``default_client``)
  is the real ``openai`` client over the in-process transport, which answers with the same scripted model and
  checks as the HTTP server. Each client gets a transport of its own, as if it had a server of its own.
- ``in_process_only``: opening a network connection, listening on a port or starting a process fails the test
  with a message that says where it belongs (``tests/integration``), so the tier stays what it says it is.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

import agentlab
import agentlab.client
from agentlab import settings
from agentlab.settings import Backend

REAL_MAKE_CLIENT = agentlab.client.make_client


def make_in_process_client(
    *,
    backend: Backend | None = None,
    max_retries: int = 2,
    timeout: float | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> AsyncOpenAI:
    """``make_client`` for the unit tier: the offline backend answers in this process; any other as usual."""
    from agentlab.offline import transport

    if http_client is None and (backend or settings.backend()) == "offline":
        http_client = httpx.AsyncClient(transport=transport())
    return REAL_MAKE_CLIENT(backend=backend, max_retries=max_retries, timeout=timeout, http_client=http_client)


@pytest.fixture(autouse=True, scope="module")
def in_process_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point ``make_client`` at the in-process transport: in agentlab, and in a test module that imported it.

    Module scope, so that it holds for the module's own module-scoped fixtures too (autouse ones run first).
    """
    modules: list[ModuleType] = [agentlab.client, agentlab]
    if getattr(request.module, "make_client", None) is REAL_MAKE_CLIENT:
        modules.append(request.module)
    with pytest.MonkeyPatch.context() as patch:
        for module in modules:
            patch.setattr(module, "make_client", make_in_process_client)
        yield


def refuse(what: str) -> Any:
    def refused(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"tests/unit runs in process, and this test {what}: it belongs in tests/integration")

    return refused


@pytest.fixture(autouse=True, scope="module")
def in_process_only() -> Iterator[None]:
    """No network connection, no listening port and no child process while a unit test module runs."""
    original_connect, original_bind = socket.socket.connect, socket.socket.bind

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            refuse(f"connected to {address}")()
        original_connect(sock, address)

    def bind(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            refuse(f"bound a port at {address}")()
        original_bind(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "bind", bind)
        patch.setattr(subprocess.Popen, "_execute_child", refuse("started a process"))
        yield
