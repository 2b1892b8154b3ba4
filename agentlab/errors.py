"""The errors that agentlab raises: one small tree under ``AgentLabError``.

Catch ``AgentLabError`` to catch them all. Each message says what went wrong and what to do.
"""

from __future__ import annotations

from typing import Any


class AgentLabError(Exception):
    """The root of every error that agentlab raises on purpose."""


class ConfigurationError(AgentLabError, ValueError):
    """The library was set up or called in a way that cannot work (a missing key, a bad tool, …)."""


class ToolError(AgentLabError):
    """A tool could not be built or called. Inside a run, tool errors go back to the model instead."""


class MaxTurnsExceeded(AgentLabError):
    """The model kept asking for tools past ``max_turns``. ``transcript`` holds the partial conversation."""

    def __init__(self, max_turns: int, transcript: list[dict[str, Any]]) -> None:
        super().__init__(
            f"the conversation did not finish within max_turns={max_turns}; "
            "raise Agent.max_turns or check why the model keeps calling tools "
            f"(the partial transcript has {len(transcript)} items: see .transcript)"
        )
        self.max_turns = max_turns
        self.transcript = transcript


class ConversationTimeout(AgentLabError, TimeoutError):
    """One conversation took longer than the runner's ``timeout``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"the conversation took longer than timeout={timeout:g} s and was cancelled; "
            "raise the timeout, or look for a hung request"
        )
        self.timeout = timeout


class BackendError(AgentLabError):
    """The model server answered with an error (or could not be reached) after the client's own retries."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
