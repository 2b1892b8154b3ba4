"""The state of a batched run, kept in a JSON file so that a run that died goes on where it stopped.

It holds the round, the batch and file ids of the round in flight, and every conversation's transcript. It is
written after every step, atomically (a temporary file beside it, then ``os.replace``), so a crash leaves
either the old state or the new one, never half of one. Its ``fingerprint`` names the agent and the prompts:
a state file of another run is refused, and left as it is. While a run uses the file it holds a lock on it
(``flock`` on ``.<name>.lock`` beside it, which the system lets go when the process dies), so that a second
run on the same file stops at once instead of sending every turn again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentlab.agent import Agent, InputItem, Prompt, start_transcript
from agentlab.batch.report import RoundTiming
from agentlab.errors import ConfigurationError
from agentlab.records import Span, Usage

__all__ = ["Conversation", "Round", "RunState", "locked", "load_state", "save_state"]

VERSION = 2


@dataclass
class Conversation:
    """One conversation of the run. Times are Unix seconds (``time.time()``): they must survive a restart."""

    messages: list[InputItem]
    status: Literal["open", "answered", "rejected"] = "open"
    turns: int = 0
    output_text: str = ""
    error: str | None = None
    max_turns_exceeded: bool = False
    usage: Usage = Usage()
    spans: list[Span] = field(default_factory=list)
    ended: float | None = None

    def end(self, now: float, *, answer: str = "", error: str | None = None) -> None:
        self.status, self.output_text, self.error, self.ended = "rejected" if error else "answered", answer, error, now


@dataclass
class Round:
    """The round in flight: its file, its batch once created, and which conversation each ``custom_id`` is."""

    number: int
    input_file_id: str
    custom_ids: dict[str, int]
    submitted: float
    batch_id: str | None = None
    resent: bool = False  # sent again because the server lost the first one (see run.py)


@dataclass
class RunState:
    fingerprint: str
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))  # in every custom_id: unique per run
    started: float = field(default_factory=time.time)
    round: int = 1
    pending: Round | None = None
    rounds: list[RoundTiming] = field(default_factory=list)  # the rounds done, in Unix times
    notes: list[str] = field(default_factory=list)  # what happened beyond the plan (a batch the server lost)
    conversations: list[Conversation] = field(default_factory=list)
    version: int = VERSION

    @classmethod
    def start(cls, agent: Agent, prompts: list[Prompt]) -> RunState:
        conversations = [Conversation(start_transcript(prompt)) for prompt in prompts]
        return cls(fingerprint(agent, prompts), conversations=conversations)

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
        "reasoning_effort": agent.reasoning_effort,
        "prompts": prompts,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the run's lock on ``path`` while the block runs; another run holding it is an error."""
    if path.is_dir():
        raise ConfigurationError(f"state_path={str(path)!r} is a folder: pass the path of a file in it")
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        try:
            lock_at_once(lock.fileno())
        except BlockingIOError:
            raise ConfigurationError(
                f"another run is using the state file {path} right now (in this process or another one); "
                "wait for it to end, or pass another state_path: two runs on one file would send every turn twice"
            ) from None
        yield  # the lock goes with the file's closing, or with the process


def lock_at_once(fd: int) -> None:
    """An exclusive lock on an open file, or BlockingIOError at once if another holds it.

    ``fcntl.flock`` on POSIX; on Windows (a learner's laptop), ``msvcrt.locking`` on the file's first byte.
    """
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError as exc:  # Windows says "deadlock avoided" for a lock held elsewhere
            raise BlockingIOError(str(exc)) from exc
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def load_state(path: Path, agent: Agent, prompts: list[Prompt]) -> RunState | None:
    """The saved state of this very run, None when there is none yet; another run's state is an error."""
    if not path.exists():
        return None
    try:
        state = decode(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigurationError(
            f"{path} is not the state file of a batched run of this agentlab ({type(exc).__name__}: {exc}); "
            "pass another state_path, or delete the file if you are sure it is not needed"
        ) from None
    if state.fingerprint != fingerprint(agent, prompts):
        there = len(state.conversations)
        raise ConfigurationError(
            f"{path} holds the state of another run (another agent or another list of prompts: {there} "
            f"prompts there, {len(prompts)} here); it was left as it is. Pass another state_path to start "
            "this run, or the same agent and prompts to resume that one."
        )
    return state


def decode(raw: Any) -> RunState:
    """The state from its JSON form: each record made again from its fields (a wrong field is a TypeError)."""
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        raise ValueError(f"it holds {type(raw).__name__} {str(raw)[:60]!r}, not a state of version {VERSION}")
    conversations = [
        Conversation(**{**c, "usage": Usage(**c["usage"]), "spans": [Span(**s) for s in c["spans"]]})
        for c in raw["conversations"]
    ]
    pending = Round(**raw["pending"]) if raw["pending"] is not None else None
    rounds = [RoundTiming(**r) for r in raw["rounds"]]
    return RunState(**{**raw, "pending": pending, "rounds": rounds, "conversations": conversations})


def save_state(path: Path, state: RunState) -> None:
    """Write the state atomically: a crash at any moment leaves a whole state file behind."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(state, default=fields_of)  # one string from the C encoder: json.dump is many times slower
    with temporary.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def fields_of(record: Any) -> dict[str, Any]:
    """A record's fields for ``json.dumps``, which calls this only for records: the rest stays in C."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
