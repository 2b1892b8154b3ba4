"""One marker grammar: whatever the offline server reads as a marker, the proxy's quick check and stripper see too."""

from __future__ import annotations

import json
import random

import pytest

from agentlab.offline.markers import KNOWN, MARKER, MarkerError, might_hold_markers, parse_markers, strip_markers

SPACES = [" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\u2028", "\x85", "\u1680", "\u202f"]


def known_markers(text: str) -> list[str]:
    return [m.group(0) for m in MARKER.finditer(text) if m.group(1).lower() in KNOWN]


def test_every_marker_the_server_reads_is_seen_by_the_quick_check_and_stripped_however_it_is_encoded() -> None:
    chance = random.Random(24)
    for _ in range(2_000):
        key = chance.choice(["duration", "fault", "mistake", "loop", "FAULT", "Loop", "mista\u212ae"])
        gap = "".join(chance.choices(SPACES, k=chance.randint(0, 3)))
        value = "" if key.lower() == "loop" else f"{gap}={gap}{chance.choice(['5', '500', 'bad_json', 'x'])}"
        text = f"What is 2 + 3? [{gap}{key}{gap}{value}{gap}]"
        assert known_markers(text) or not parse_markers(text).flags  # the server reads it, or not at all
        if not known_markers(text):
            continue
        for encoded in (json.dumps(text).encode(), json.dumps(text, ensure_ascii=False).encode()):
            assert might_hold_markers(encoded), encoded
        assert known_markers(strip_markers(text)) == []


def test_a_marker_spelt_by_removing_another_goes_too_and_endless_nesting_is_refused() -> None:
    assert strip_markers("2 + 3? [[duration=1]fault=500]") == "2 + 3?"  # both gone
    with pytest.raises(MarkerError):
        strip_markers("[" * 20 + "loop]" * 20)


def test_text_without_a_known_marker_is_not_even_looked_at_twice() -> None:
    assert not might_hold_markers(json.dumps({"input": "Use [brackets] and [note=1], [looping]"}).encode())
    text = "no marker [note=1] "
    assert strip_markers(text) is text
