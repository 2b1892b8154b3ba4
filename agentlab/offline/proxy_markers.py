"""What the proxy does with a request's text: find the markers, remove them, and time whole conversations.

The offline server reads the markers of the last user message; so does the proxy (``last_user_text``). Before a
request goes to a real model, ``without_markers`` removes them from the instructions and every input text.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from agentlab.offline.markers import strip_markers

__all__ = ["ConversationClock", "last_user_text", "without_markers"]


class ConversationClock:
    """When each conversation began, so that ``[duration=X]`` spans the conversation, as it does offline.

    A conversation is named by its opening messages (every request of it repeats them). A request that holds
    nothing but them is its first (or the retry of its first), and restarts its clock.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.started: OrderedDict[str, float] = OrderedDict()

    def start_of(self, raw_input: Any, instructions: Any, now: float) -> tuple[str, float]:
        items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else list(raw_input)
        opening = [item for item in items if is_opening(item)]
        key = hashlib.blake2b(json.dumps([instructions, opening], default=str).encode(), digest_size=8).hexdigest()
        if len(opening) == len(items) or key not in self.started:
            self.started[key] = now
        self.started.move_to_end(key)
        while len(self.started) > self.limit:
            self.started.popitem(last=False)
        return key, self.started[key]


def is_opening(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") != "assistant"


def last_user_text(raw_input: Any) -> str:
    """The text of the last user message: where the offline server reads the markers too."""
    if isinstance(raw_input, str):
        return raw_input
    for item in reversed(raw_input if isinstance(raw_input, list) else []):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return " ".join(texts_of(item.get("content")))
    return ""


def texts_of(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    parts = content if isinstance(content, list) else []
    return [str(part["text"]) for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str)]


def without_markers(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of the request with the markers removed from the instructions and from every input text."""
    clean = dict(body)
    if isinstance(body.get("instructions"), str):
        clean["instructions"] = strip_markers(body["instructions"])
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        clean["input"] = strip_markers(raw_input)
    elif isinstance(raw_input, list):
        clean["input"] = [clean_item(item) for item in raw_input]
    return clean


def clean_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    clean = dict(item)
    for name in ("content", "output"):
        value = item.get(name)
        if isinstance(value, str):
            clean[name] = strip_markers(value)
        elif isinstance(value, list):
            clean[name] = [clean_part(part) for part in value]
    return clean


def clean_part(part: Any) -> Any:
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return {**part, "text": strip_markers(part["text"])}
    return part
