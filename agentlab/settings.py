"""Settings from the environment, read in one place, with one reaction to a bad value: a clear error.

=======================  =========================================  ===========================
variable                 what it sets                               default
=======================  =========================================  ===========================
``AGENTLAB_BACKEND``     ``offline`` (the local server) or          ``offline``
                         ``openai`` (the real API, via the proxy)
``AGENTLAB_TIME_SCALE``  multiplies every delay of the offline      ``1``
                         server and the lessons' clock
``AGENTLAB_MODEL``       the model an ``Agent`` asks for            ``gpt-5-mini``
=======================  =========================================  ===========================

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

__all__ = ["Backend", "backend", "time_scale", "model", "BACKENDS"]

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
