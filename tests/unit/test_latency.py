"""Latency and faults: deterministic, scaled, and forced by markers."""

from __future__ import annotations

import pytest

from agentlab.offline.config import FaultPlan, LatencyModel, config_from_env
from agentlab.offline.markers import Markers, parse_markers


def test_markers() -> None:
    assert parse_markers("What is 1 + 1?") == Markers()
    assert parse_markers("x [duration=5]") == Markers(duration=5.0)
    assert parse_markers("x [duration = 2.5s]").duration == 2.5
    assert parse_markers("x [fault=500]") == Markers(fault="500")
    assert parse_markers("x [FAULT=429x1]") == Markers(fault="429", fault_attempts=1)
    assert parse_markers("x [fault=hang] [duration=1]") == Markers(duration=1.0, fault="hang")
    assert parse_markers("x [fault=teapot] [duration=soon]") == Markers()


def test_latency_is_deterministic_scaled_and_jittered_within_bounds() -> None:
    model = LatencyModel(base=0.3, per_output_token=0.01, jitter=0.2, seed=1, time_scale=1.0)
    assert model.delay("k", 10, None) == model.delay("k", 10, None)
    delays = [model.delay(f"k{i}", 10, None) for i in range(1000)]
    assert min(delays) >= 0.4 * 0.8 and max(delays) <= 0.4 * 1.2
    assert len(set(delays)) > 900  # jitter really varies by request
    half = LatencyModel(base=0.3, per_output_token=0.01, jitter=0.2, seed=1, time_scale=0.5)
    assert half.delay("k", 10, None) == pytest.approx(model.delay("k", 10, None) / 2)
    assert LatencyModel(seed=2).delay("k", 10, None) != LatencyModel(seed=3).delay("k", 10, None)


def test_forced_duration_is_exact() -> None:
    assert LatencyModel(time_scale=0.05).delay("k", 999, forced_turn_seconds=2.5) == pytest.approx(0.125)


def test_fault_rate_matches_and_retries_get_a_fresh_draw() -> None:
    plan = FaultPlan(rate=0.1, seed=7)
    none = Markers()
    faults = [plan.choose(f"req{i}", 0, none) for i in range(10_000)]
    share = sum(f is not None for f in faults) / len(faults)
    print(f"\nfault share at rate 0.1: {share:.3f}")
    assert 0.08 <= share <= 0.12
    assert {f for f in faults if f} == {"500", "429", "hang"}
    failed_first = [f"req{i}" for i, f in enumerate(faults) if f]
    still_failing = sum(plan.choose(key, 1, none) is not None for key in failed_first)
    assert still_failing / len(failed_first) < 0.2
    assert [plan.choose("a", 0, none) for _ in range(3)] == [plan.choose("a", 0, none)] * 3


def test_markers_force_faults() -> None:
    plan = FaultPlan()
    assert plan.choose("k", 5, Markers(fault="500")) == "500"
    assert plan.choose("k", 0, Markers(fault="429", fault_attempts=1)) == "429"
    assert plan.choose("k", 1, Markers(fault="429", fault_attempts=1)) is None


def test_config_from_env() -> None:
    config = config_from_env({"AGENTLAB_TIME_SCALE": "0.1", "AGENTLAB_SEED": "3", "AGENTLAB_FAULT_RATE": "0.2"})
    assert config.latency.time_scale == 0.1 and config.latency.seed == 3
    assert config.faults.rate == 0.2 and config.faults.seed == 3
    assert config_from_env({}).latency.time_scale == 1.0
    with pytest.raises(ValueError, match=r"AGENTLAB_TIME_SCALE='fast' is not a number .* such as 0.05"):
        config_from_env({"AGENTLAB_TIME_SCALE": "fast"})
    with pytest.raises(ValueError, match="greater than 0"):
        config_from_env({"AGENTLAB_TIME_SCALE": "0"})
    with pytest.raises(ValueError, match="between 0 and 1"):
        config_from_env({"AGENTLAB_FAULT_RATE": "2"})
