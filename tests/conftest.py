"""Fixtures that every tier may use: the one offline server a test module talks to over HTTP.

A module that needs the server with settings of its own overrides ``server_config`` (pytest's fixture
overriding), and its tests take ``server`` as usual::

    @pytest.fixture(scope="module")
    def server_config() -> ServerConfig:
        return ServerConfig(LatencyModel(time_scale=0.01), max_body_bytes=64_000)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the server loads when a module asks for it: tests/unit never does
    from agentlab.offline import OfflineServer, ServerConfig


@pytest.fixture(scope="module")
def server_config() -> ServerConfig | None:
    """The settings of the module's offline server. None: the environment's (``AGENTLAB_TIME_SCALE`` ...)."""
    return None


@pytest.fixture(scope="module")
def server(server_config: ServerConfig | None) -> Iterator[OfflineServer]:
    """An offline server (HTTP on 127.0.0.1, a free port, its own thread) for one module, stopped after it."""
    from agentlab.offline import start

    with start(server_config) as running:
        yield running
