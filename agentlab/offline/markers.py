"""Control markers in a prompt: ``[duration=5]``, ``[fault=429x1]``, ``[mistake=bad_json]``, ``[loop]``.

One parser for the one ``[key=value]`` syntax, used by the server (latency, faults), the scripted model
(mistakes, loops) and the real-API proxy (which strips them before a real model sees them).

| marker                                   | who reads it     | effect                                          |
|------------------------------------------|------------------|-------------------------------------------------|
| ``[duration=5]``                         | server, proxy    | the conversation takes 5 s (× the time scale)   |
| ``[fault=500]``, ``429``, ``hang``, ``drop``, ``failed`` | server, proxy | every attempt fails; ``x1``: the first |
| ``[mistake=unknown_tool]`` (``bad_json``, ``wrong_types``) | scripted model | its first call is wrong on purpose |
| ``[loop]``                               | scripted model   | it never stops calling tools                    |

``drop`` and ``failed`` happen inside a stream (``stream: true``, see ``responses.py``): ``drop`` closes the
connection halfway, ``failed`` ends the stream halfway with ``response.failed``. Without a stream, both are a 500.

Why a hand-written pattern and not a general one: the scan must stay linear in the prompt's length, whatever a
client sends (a prompt of ``"[a=" * 16000`` once held the server for 9 s). Keys and values are short and may not
hold ``[`` or ``]``, so each ``[`` is looked at once, for a bounded number of characters; and a prompt
longer than ``MAX_SCANNED`` characters is not scanned at all (even a linear scan of 4 MB holds the server's
event loop for half a second).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Markers", "parse_markers", "strip_markers", "blank_markers", "might_hold_markers", "MarkerError"]
__all__ += ["MAX_DURATION", "FAULT_KINDS", "MISTAKES"]

FAULT_KINDS = ("500", "429", "hang", "drop", "failed")
MISTAKES = ("unknown_tool", "bad_json", "wrong_types")
KNOWN = ("duration", "fault", "mistake", "loop")
MAX_SCANNED = 100_000  # characters: nobody types markers into a longer prompt, and scanning it holds the server
MAX_DURATION = 3600.0  # the same cap as a hang: a marker never asks for more than an hour

MARKER = re.compile(r"\[\s*([a-z_]{1,20})\s*(?:=\s*([^\[\]]{0,40}))?\]", re.IGNORECASE)
DURATION = re.compile(r"(\d{1,12}(?:\.\d{1,12})?)\s?s?")
FAULT = re.compile(r"(" + "|".join(FAULT_KINDS) + r")(?:\s?x\s?(\d{1,6}))?")
# What might be a known marker once a body's JSON escapes are read: MARKER's spaces (any Unicode space), or one
# that JSON escapes; a known key in any case (the Kelvin sign K is a k to IGNORECASE, as to MARKER and .lower()).
JSON_SPACE = r"(?:\s|\\[nrtf])*"
MIGHT_BE = re.compile(r"\[" + JSON_SPACE + "(?:" + "|".join(KNOWN) + ")" + JSON_SPACE + r"[=\]]", re.IGNORECASE)
STRIP_PASSES = 8  # removing a marker can join the text around it into another: "[[loop]loop]"


class MarkerError(ValueError):
    """A text whose markers, removed, keep spelling new ones: nothing a person types by accident."""


@dataclass(frozen=True, slots=True)
class Markers:
    """The markers of one prompt. Malformed or unknown ones are simply absent."""

    duration: float | None = None
    fault: str | None = None
    fault_attempts: int | None = None
    mistake: str | None = None
    loop: bool = False
    flags: dict[str, str] = field(default_factory=dict, compare=False)  # every [key=value] seen, lower-cased


def parse_markers(text: str) -> Markers:
    """Read the markers of ``text`` in one linear pass. A text over ``MAX_SCANNED`` characters has none."""
    if len(text) > MAX_SCANNED:
        return Markers()
    flags = {match.group(1).lower(): (match.group(2) or "").strip().lower() for match in MARKER.finditer(text)}
    duration = DURATION.fullmatch(flags.get("duration", ""))
    fault = FAULT.fullmatch(flags.get("fault", ""))
    mistake = flags.get("mistake")
    return Markers(
        duration=min(float(duration.group(1)), MAX_DURATION) if duration else None,
        fault=fault.group(1) if fault else None,
        fault_attempts=int(fault.group(2)) if fault and fault.group(2) else None,
        mistake=mistake if mistake in MISTAKES else None,
        loop="loop" in flags,
        flags=flags,
    )


def strip_markers(text: str) -> str:
    """``text`` without its known control markers, for a real model: each goes with the spaces just before it,
    and unknown ``[...]`` text stays. ``"What is 2 + 3? [duration=1] [note=x]"`` → ``"What is 2 + 3? [note=x]"``.
    A text without a known marker comes back exactly as it was. Removing one can spell another
    (``"[[loop]loop]"`` → ``"[loop]"``): it strips again, and a text that still holds one after ``STRIP_PASSES``
    is a ``MarkerError``."""
    for _ in range(STRIP_PASSES):
        stripped = strip_once(text)
        if stripped is text:
            return text
        text = stripped
    raise MarkerError("The text holds control markers nested in one another: write each [key=value] once.")


def strip_once(text: str) -> str:
    kept, position = [], 0
    for match in MARKER.finditer(text):
        if match.group(1).lower() in KNOWN:
            kept.append(text[position : match.start()].rstrip(" "))
            position = match.end()
    return "".join([*kept, text[position:]]).strip() if position else text


def blank_markers(text: str) -> str:
    """``text`` with every ``[key=value]``, known or not, replaced by a space: the arithmetic never reads them."""
    return MARKER.sub(" ", text)


def might_hold_markers(raw: bytes) -> bool:
    """False when ``raw`` (a JSON body, a form, a file) surely holds no known marker, however it is written.

    It reads ``raw`` as text, JSON escapes and all: a ``\\u`` escape could spell a marker, so it counts.
    (Two searches, not one pattern with ``|``: that defeats the regex engine's quick scan for ``[``.)
    """
    text = raw.decode("utf-8", "replace")
    return MIGHT_BE.search(text) is not None or "\\u" in text
