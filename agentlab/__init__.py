"""agentlab: learn to run many LLM-agent conversations at once, with measured, reproducible timings.

Start with ``Agent`` and ``agentlab.tools.math``, then compare the runners: ``run_serial`` (the sum of the
durations), ``run_concurrent`` (about the longest one), ``run_settled`` (keep partial results) and
``run_bounded`` (at most k at once, or paced by a rate limit); ``as_completed`` yields each as it finishes.
Every lesson runs against a local offline server: no key needed.
"""

from agentlab.agent import Agent
from agentlab.budget import Budget, RequestTooLarge
from agentlab.client import DEFAULT_MODEL, default_client, make_client, offline_server, run_sync
from agentlab.errors import (
    AgentLabError,
    BackendError,
    ConfigurationError,
    ConversationTimeout,
    MaxTurnsExceeded,
    PromptError,
    ToolError,
)
from agentlab.records import (
    AgentEvent,
    Batch,
    BatchReport,
    ConversationTiming,
    Fulfilled,
    Outcome,
    Rejected,
    RunResult,
    Span,
    Usage,
    format_transcript,
)
from agentlab.runners import as_completed, run_bounded, run_concurrent, run_serial, run_settled
from agentlab.tools import Tool, tool

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Agent",
    "AgentEvent",
    "AgentLabError",
    "BackendError",
    "Budget",
    "Batch",
    "BatchReport",
    "ConfigurationError",
    "ConversationTimeout",
    "ConversationTiming",
    "Fulfilled",
    "MaxTurnsExceeded",
    "Outcome",
    "PromptError",
    "Rejected",
    "RequestTooLarge",
    "RunResult",
    "Span",
    "Tool",
    "ToolError",
    "Usage",
    "as_completed",
    "default_client",
    "format_transcript",
    "make_client",
    "offline_server",
    "run_bounded",
    "run_concurrent",
    "run_serial",
    "run_settled",
    "run_sync",
    "tool",
]
