"""The offline server's settings: how long the model "thinks", which requests fail on purpose, and the limits.

Latency of one model turn, deterministic::

    (base + per_output_token × output_tokens) × (1 ± jitter) × time_scale

where the jitter comes from a stable hash of the seed and the request, so the same request always takes the
same time. ``time_scale`` is ``AGENTLAB_TIME_SCALE`` (1.0 in the lessons, 0.05 in the tests). A ``[duration=5]``
marker forces the whole conversation to take 5 s (× the time scale), spread over its planned model turns.

Faults: a share ``rate`` of requests fails at random (500, 429 or hang), seeded; a ``[fault=…]`` marker forces one.

Environment variables, read when the server starts: ``AGENTLAB_TIME_SCALE`` (through ``agentlab.settings``),
``AGENTLAB_SEED`` (default 0), ``AGENTLAB_FAULT_RATE`` (default 0), ``AGENTLAB_RPM`` and ``AGENTLAB_TPM``
(default unset: no limit, see ``ratelimit.py``). A value that would hang or misbehave the server is refused at
start, with what to set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentlab.offline.markers import Markers
from agentlab.offline.ratelimit import check_limit, limits_from_env
from agentlab.settings import time_scale

__all__ = [
    "LatencyModel",
    "FaultPlan",
    "ServerConfig",
    "config_from_env",
    "with_limits",
    "unit_hash",
    "require",
    "RANDOM_FAULTS",
]

RANDOM_FAULTS = ("500", "429", "hang")  # the faults a random rate draws from
MAX_LIMIT = 10**12  # requests or tokens per minute: far above any real organisation's limit


def unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) from the parts (unlike ``hash()``, the same in every process)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class LatencyModel:
    base: float = 0.35
    per_output_token: float = 0.004
    jitter: float = 0.2
    seed: int = 0
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        require(
            self.time_scale > 0, "time_scale (--time-scale, AGENTLAB_TIME_SCALE)", "greater than 0", self.time_scale
        )
        require(self.base >= 0, "base (--base-latency, seconds per turn)", "0 or more", self.base)
        require(self.per_output_token >= 0, "per_output_token (--per-token)", "0 or more", self.per_output_token)
        require(0 <= self.jitter <= 1, "jitter (--jitter)", "between 0 and 1", self.jitter)

    def delay(self, key: str, output_tokens: int, forced_turn_seconds: float | None) -> float:
        """Seconds to wait before answering this request."""
        if forced_turn_seconds is not None:
            return forced_turn_seconds * self.time_scale
        spread = 1 + self.jitter * (2 * unit_hash(self.seed, key) - 1)
        return (self.base + self.per_output_token * output_tokens) * spread * self.time_scale


@dataclass(frozen=True, slots=True)
class FaultPlan:
    rate: float = 0.0
    kinds: tuple[str, ...] = RANDOM_FAULTS
    seed: int = 0
    retry_after: float = 1.0
    hang_seconds: float = 3600.0

    def __post_init__(self) -> None:
        require(0 <= self.rate <= 1, "rate (--fault-rate, AGENTLAB_FAULT_RATE)", "between 0 and 1", self.rate)
        require(self.retry_after >= 0, "retry_after", "0 or more", self.retry_after)
        require(self.hang_seconds >= 0, "hang_seconds", "0 or more", self.hang_seconds)

    def choose(self, key: str, attempt: int, markers: Markers) -> str | None:
        """The fault for this attempt of this request, or None. A marker wins over the random rate."""
        if markers.fault:
            limit = markers.fault_attempts
            return markers.fault if limit is None or attempt < limit else None
        if self.rate > 0 and self.kinds and unit_hash(self.seed, key, attempt, "fault") < self.rate:
            return self.kinds[int(unit_hash(self.seed, key, attempt, "kind") * len(self.kinds))]
        return None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    latency: LatencyModel = field(default_factory=LatencyModel)
    faults: FaultPlan = field(default_factory=FaultPlan)
    max_body_bytes: int = 4 * 1024 * 1024
    markers: bool = True  # False: prompt markers are plain text (no durations, faults, mistakes or loops)
    read_timeout: float = 60.0  # seconds (not scaled) a client may take to send a request, or stay idle between two
    upstream: str | None = None  # proxy mode: forward to this API (e.g. https://api.openai.com/v1), see proxy.py
    rpm: int | None = None  # requests per minute (of 60 s × time scale), see ratelimit.py; None: no limit
    tpm: int | None = None  # tokens per minute, input and output; None: no limit
    batch_seconds: float = 2.0  # how long one batch of the Batch API takes (× time scale), see batches.py
    batch_window_seconds: float = 24 * 3600.0  # a batch's completion window "24h" (× time scale): then it expires
    max_file_bytes: int = 64 * 1024 * 1024  # the largest upload to /v1/files (413 above it), see batches.py
    max_stored_bytes: int = 512 * 1024 * 1024  # files held in memory; past it the oldest are dropped
    data_dir: str | None = None  # a folder that keeps files and batches across a restart (serve --data-dir)

    def __post_init__(self) -> None:
        require(
            0 < self.batch_seconds <= 86400,
            "batch_seconds (--batch-seconds)",
            "above 0, up to 86400",
            self.batch_seconds,
        )
        for name, limit in (("rpm (--rpm, AGENTLAB_RPM)", self.rpm), ("tpm (--tpm, AGENTLAB_TPM)", self.tpm)):
            if limit is not None and not 1 <= limit <= MAX_LIMIT:  # 400 digits would overflow the bucket's floats
                shown = limit if len(str(limit)) <= 20 else f"a number of {len(str(limit))} digits"
                raise ValueError(f"{name} must be a whole number from 1 to {MAX_LIMIT:.0e}, got {shown}")


def config_from_env(environ: Mapping[str, str] | None = None) -> ServerConfig:
    """A ServerConfig from ``AGENTLAB_TIME_SCALE``, ``AGENTLAB_SEED``, ``AGENTLAB_FAULT_RATE``, ``AGENTLAB_RPM/TPM``."""
    env = os.environ if environ is None else environ
    scale = time_scale(env)
    seed = int(env_number(env, "AGENTLAB_SEED", "0", int, "42"))
    rate = env_number(env, "AGENTLAB_FAULT_RATE", "0", float, "0.1")
    require(0 <= rate <= 1, "AGENTLAB_FAULT_RATE", "between 0 and 1 (for example 0.1)", rate)
    rpm, tpm = limits_from_env(env)  # AGENTLAB_RPM, AGENTLAB_TPM
    return ServerConfig(LatencyModel(seed=seed, time_scale=scale), FaultPlan(rate=rate, seed=seed), rpm=rpm, tpm=tpm)


def with_limits(config: ServerConfig | None, rpm: int | None, tpm: int | None) -> ServerConfig:
    """``config`` (else the environment's), with ``rpm`` and ``tpm`` (``start(rpm=..., tpm=...)``) over its own."""
    config = config or config_from_env()
    rpm, tpm = check_limit("rpm", rpm) or config.rpm, check_limit("tpm", tpm) or config.tpm
    return dataclasses.replace(config, rpm=rpm, tpm=tpm)


def env_number(env: Mapping[str, str], name: str, default: str, kind: type[float] | type[int], example: str) -> float:
    """The number in environment variable ``name``; a ValueError that shows how to set it when it is not one."""
    text = env.get(name, default).strip() or default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number: set it like {name}={example}") from None


def require(ok: bool, name: str, what: str, value: float) -> None:
    """A setting that would hang or misbehave the server is refused when the server starts, with what to set."""
    if not (ok and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number {what}, got {value}")
