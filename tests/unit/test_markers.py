"""Control markers: one parser, linear in the prompt's length, and a stripper for the real-API proxy."""

from __future__ import annotations

import time

from agentlab.offline.markers import MAX_DURATION, MAX_SCANNED, parse_markers, strip_markers


def test_every_marker_is_read() -> None:
    markers = parse_markers("What is 2 + 2? [duration=5] [fault=429x1] [mistake=bad_json] [loop]")
    assert (markers.duration, markers.fault, markers.fault_attempts) == (5.0, "429", 1)
    assert markers.mistake == "bad_json" and markers.loop
    assert parse_markers("[fault=drop]").fault == "drop"
    assert parse_markers("[mistake=teapot]").mistake is None


def test_a_duration_of_400_nines_is_capped_like_a_hang() -> None:
    assert parse_markers("[duration=" + "9" * 400 + "]").duration is None  # too long a number: not a marker
    assert parse_markers("[duration=999999999999]").duration == MAX_DURATION


def test_parsing_is_linear_in_the_prompt_length() -> None:
    def seconds(text: str) -> float:
        """The best of three: the machine is shared."""
        times = []
        for _ in range(3):
            start = time.perf_counter()
            parse_markers(text)
            strip_markers(text)
            times.append(time.perf_counter() - start)
        return min(times)

    small, large = seconds("[a=" * 4_000), seconds("[a=" * 64_000)
    assert large < 40 * max(small, 1e-4)  # 16x the input: quadratic would be 256x
    assert seconds("[a=" * 1_000_000) < 2.0


def test_a_prompt_too_long_to_scan_has_no_markers() -> None:
    assert parse_markers("x" * MAX_SCANNED + "[fault=500]") == parse_markers("")
    assert parse_markers("x" * (MAX_SCANNED - 20) + "[fault=500]").fault == "500"


def test_strip_markers_keeps_everything_else() -> None:
    assert strip_markers("What is 2 + 2? [duration=5] [fault=500]") == "What is 2 + 2?"
    assert strip_markers("[loop] Use [brackets] as text") == "Use [brackets] as text"
    assert strip_markers("What is 2 + 3?  [duration=1] [mystery=7] now") == "What is 2 + 3? [mystery=7] now"
    assert strip_markers("  no known marker [note=1] ") == "  no known marker [note=1] "  # exactly as it came
