"""The lessons' clock: seconds as the lessons speak of them, on the same clock as the offline server.

The offline server multiplies every delay by ``AGENTLAB_TIME_SCALE`` (1 unless you set it). A lesson's own
waits and time stamps follow the same clock through these helpers, so that "a 2 s tool" stays in proportion
to "a 5 s conversation" at any scale, and no lesson cell does the arithmetic::

    await asyncio.sleep(seconds(2))     # 2 s on the lessons' clock
    clock = Stopwatch()
    clock.stamp("work starts")          # prints "0.00 s  work starts"
"""

from __future__ import annotations

import time

from agentlab.settings import time_scale

__all__ = ["seconds", "Stopwatch"]


def seconds(lesson_seconds: float) -> float:
    """How long to really wait for ``lesson_seconds`` on the lessons' clock."""
    return lesson_seconds * time_scale()


class Stopwatch:
    """Time since it started (or last restarted), in lesson seconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def restart(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return (time.perf_counter() - self.started) / time_scale()

    def stamp(self, text: str) -> None:
        """Print ``text`` after the time since the start: ``1.00 s  now we await it``."""
        print(f"{self.elapsed():.2f} s  {text}")
