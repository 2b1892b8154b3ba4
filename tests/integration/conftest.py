"""Fixtures of the integration tier: the stand-in API that the proxy tests forward to, and the proxy before it.

One pair per test module (``scope="module"``), as the one offline server of ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxy_support import Served, proxy_to, stand_in


@pytest.fixture(scope="module")
def upstream() -> Iterator[Served]:
    """The stand-in for the real API (``serve --no-markers``), at the tests' time scale."""
    with stand_in() as served:
        yield served


@pytest.fixture(scope="module")
def proxy(upstream: Served) -> Iterator[Served]:
    """``serve --proxy-to`` the stand-in: what the learner's client talks to."""
    with proxy_to(upstream.base_url) as served:
        yield served
