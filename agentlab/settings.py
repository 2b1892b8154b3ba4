"""Settings from the environment, read in one place, with one reaction to a bad value: a clear error.

- ``AGENTLAB_BACKEND``: ``offline`` (the local server, the default) or ``openai`` (the real API, via the proxy).
- ``AGENTLAB_TIME_SCALE``: multiplies every delay of the offline server and the lessons' clock (default 1).
- ``AGENTLAB_MODEL``: the model an ``Agent`` asks for (default ``gpt-5-mini``).
- ``AGENTLAB_TOOL_THREADS``: how many sync tool calls may run at once (default 32).
- ``AGENTLAB_OFFLINE_URL``: the ``/v1`` URL of an offline server you started, instead of one in this process.
- ``OPENAI_API_KEY`` (for ``AGENTLAB_BACKEND=openai``) and ``OPENAI_BASE_URL`` (where the proxy forwards to).

Each reader takes an optional mapping (``os.environ`` when None), so that a server started for another
environment (a grader's kernel, a subprocess) reads that one. A value that does not parse is a
``ConfigurationError`` that names the variable and says what to write instead: never a silent default.
This module sits at the bottom of the layers: the offline server reads its settings here too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Literal

from agentlab.errors import ConfigurationError

__all__ = ["Backend", "backend", "time_scale", "model", "tool_threads", "offline_url", "api_key", "upstream_url"]

Backend = Literal["offline", "openai"]
BACKENDS: tuple[Backend, ...] = ("offline", "openai")


def read(name: str, environ: Mapping[str, str] | None) -> str:
    return ((os.environ if environ is None else environ).get(name) or "").strip()


def backend(environ: Mapping[str, str] | None = None) -> Backend:
    """``"offline"`` unless ``AGENTLAB_BACKEND=openai`` asks for the real API."""
    value = read("AGENTLAB_BACKEND", environ).lower() or "offline"
    if value not in BACKENDS:
        raise ConfigurationError(f"AGENTLAB_BACKEND={value!r} is not known: use 'offline' (default) or 'openai'")
    return "openai" if value == "openai" else "offline"


def time_scale(environ: Mapping[str, str] | None = None) -> float:
    """``AGENTLAB_TIME_SCALE``: a number greater than 0 (1.0 when unset)."""
    text = read("AGENTLAB_TIME_SCALE", environ)
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigurationError(
            f"AGENTLAB_TIME_SCALE={text!r} is not a number greater than 0: use 1 for the lessons' real time, "
            "or a small number such as 0.05 to make every delay shorter"
        )
    return scale


def model(environ: Mapping[str, str] | None = None) -> str:
    """``AGENTLAB_MODEL``, or ``gpt-5-mini``."""
    return read("AGENTLAB_MODEL", environ) or "gpt-5-mini"


def tool_threads(environ: Mapping[str, str] | None = None) -> int:
    """``AGENTLAB_TOOL_THREADS``: how many sync tool calls may run at once, a whole number >= 1 (32 when unset)."""
    text = read("AGENTLAB_TOOL_THREADS", environ) or "32"
    if not (text.isdigit() and int(text) >= 1):
        raise ConfigurationError(f"AGENTLAB_TOOL_THREADS={text!r} is not a whole number >= 1: set it to, say, 32")
    return int(text)


def offline_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``AGENTLAB_OFFLINE_URL``: an offline server you started (``python -m agentlab serve``), else None."""
    return read("AGENTLAB_OFFLINE_URL", environ).rstrip("/") or None


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``OPENAI_API_KEY``, for the real API; None when unset."""
    return read("OPENAI_API_KEY", environ) or None


def upstream_url(environ: Mapping[str, str] | None = None) -> str:
    """Where proxy mode forwards to: ``OPENAI_BASE_URL`` (as the openai client reads it), else the official API."""
    return read("OPENAI_BASE_URL", environ).rstrip("/") or "https://api.openai.com/v1"
