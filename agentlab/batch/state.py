"""The state of a batched run, kept in a JSON file so that a run that died goes on where it stopped.

It holds the round, the batch and file ids of the round in flight, and every conversation's transcript. It is
written after every step, atomically (a temporary file beside it, then ``os.replace``), so a crash leaves
either the old state or the new one, never half of one. Its ``fingerprint`` names the agent and the prompts:
a state file of another run is refused, and left as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.agent import Agent, Prompt, start_transcript
from agentlab.errors import ConfigurationError

__all__ = ["Conversation", "RunState", "fingerprint", "load_state", "save_state"]

VERSION = 1


@dataclass
class Conversation:
    """One conversation of the run. Times are Unix seconds (``time.time()``): they must survive a restart."""

    messages: list[dict[str, Any]]
    status: str = "open"  # open → answered | rejected
    turns: int = 0
    output_text: str = ""
    error: str | None = None
    error_kind: str | None = None  # "max_turns" or "backend"
    usage: list[int] = field(default_factory=lambda: [0, 0])
    spans: list[list[Any]] = field(default_factory=list)  # [kind, name, start, end]
    ended: float | None = None


@dataclass
class RunState:
    fingerprint: str
    n: int
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))  # in every custom_id: unique per run
    started: float = field(default_factory=time.time)
    round: int = 1
    pending: dict[str, Any] | None = None  # the round in flight: input_file_id, batch_id, custom_ids, submitted
    rounds: list[dict[str, Any]] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    version: int = VERSION

    @classmethod
    def start(cls, agent: Agent, prompts: list[Prompt]) -> RunState:
        conversations = [Conversation(start_transcript(prompt)) for prompt in prompts]
        return cls(fingerprint(agent, prompts), len(prompts), conversations=conversations)

    def open(self) -> list[int]:
        return [i for i, conv in enumerate(self.conversations) if conv.status == "open"]


def fingerprint(agent: Agent, prompts: list[Prompt]) -> str:
    """A hash of everything that decides what the run sends: the agent's settings and the prompts."""
    settings = {
        "model": agent.model,
        "instructions": agent.instructions,
        "tools": agent.tool_schemas,
        "max_turns": agent.max_turns,
        "parallel_tool_calls": agent.parallel_tool_calls,
        "reasoning_effort": getattr(agent, "reasoning_effort", None),
        "prompts": prompts,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load_state(path: Path, agent: Agent, prompts: list[Prompt]) -> RunState | None:
    """The saved state of this very run, None when there is none yet; another run's state is an error."""
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        conversations = [Conversation(**conv) for conv in raw.pop("conversations")]
        state = RunState(**raw, conversations=conversations)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(
            f"{path} is not the state file of a batched run ({type(exc).__name__}: {exc}); "
            "pass another state_path, or delete the file if you are sure it is not needed"
        ) from None
    if state.fingerprint != fingerprint(agent, prompts) or state.n != len(prompts):
        raise ConfigurationError(
            f"{path} holds the state of another run (another agent or another list of prompts: {state.n} "
            f"prompts there, {len(prompts)} here); it was left as it is. Pass another state_path to start "
            "this run, or the same agent and prompts to resume that one."
        )
    return state


def save_state(path: Path, state: RunState) -> None:
    """Write the state atomically: a crash at any moment leaves a whole state file behind."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = {**vars(state), "conversations": [vars(conv) for conv in state.conversations]}
    text = json.dumps(raw)  # one string from the C encoder: json.dump to a file is many times slower
    with temporary.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
