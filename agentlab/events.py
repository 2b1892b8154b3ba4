"""The contracts between a batch and whoever watches it: the event handler and the ``Progress`` protocol.

They sit beside the records (``results.py``), below the runners, so that a runner depends only on these
names and never on a display. A display (the tqdm bar, the lanes view, …) is a layer *above* the runners: a
runner finds one by name in ``PROGRESS_VIEWS`` and imports it only when a batch asks for it
(``progress=True`` or ``progress="bar"``). ``import agentlab`` loads no display.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, TypeAlias

from agentlab.errors import ConfigurationError
from agentlab.results import AgentEvent, Outcome

__all__ = ["BatchEventHandler", "Progress", "ProgressOption", "PROGRESS_VIEWS", "make_progress"]

# Called with (conversation index, event) for every event of every conversation of a batch.
BatchEventHandler: TypeAlias = Callable[[int, AgentEvent], None]


class Progress(Protocol):
    """What a runner tells a progress display, in this order."""

    def start_batch(self, total: int, label: str) -> None: ...
    def conversation_started(self, index: int) -> None: ...
    def conversation_event(self, index: int, event: AgentEvent) -> None: ...
    def conversation_finished(self, index: int, outcome: Outcome) -> None: ...
    def end_batch(self) -> None: ...


# What a runner's `progress=` accepts: False/None (nothing), True (the bar), a view's name, or a Progress.
ProgressOption: TypeAlias = "bool | str | Progress | None"

# A view's name → "module:factory". The factory takes no arguments and returns a Progress.
PROGRESS_VIEWS: dict[str, str] = {
    "bar": "agentlab.progress:TqdmProgress",
    "lanes": "agentlab.lanes:Lanes",
}


def make_progress(progress: ProgressOption) -> Progress | None:
    """``False`` → no display, ``True`` → the tqdm bar, a name → that view, a Progress object → itself."""
    if progress is True:
        progress = "bar"
    if progress is False or progress is None:
        return None
    if not isinstance(progress, str):
        return progress
    if progress not in PROGRESS_VIEWS:
        raise ConfigurationError(
            f"progress={progress!r} is not a known view: use True, False, one of {sorted(PROGRESS_VIEWS)}, "
            "or an object with the Progress methods (start_batch, conversation_started, …)"
        )
    module, _, factory = PROGRESS_VIEWS[progress].partition(":")
    view: Progress = getattr(importlib.import_module(module), factory)()
    return view
