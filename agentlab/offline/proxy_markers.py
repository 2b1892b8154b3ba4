"""What the proxy does with a request's text: find the markers, remove them, and time whole conversations.

The offline server reads the markers of the last user message; so does the proxy (``last_user_text``). Before a
request goes to a real model, ``without_markers`` removes them from the instructions and every input text: each
known marker goes, with the spaces just before it (``"What is 2 + 3? [duration=1]"`` → ``"What is 2 + 3?"``).

``markers.strip_markers`` cleans each text, as the offline server's own marker grammar reads them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from email.message import EmailMessage
from typing import Any

from agentlab.offline.markers import KNOWN, strip_markers

__all__ = [
    "ConversationClock",
    "form_without_markers",
    "last_user_text",
    "might_hold_markers",
    "without_markers",
]

SPACE = rb"(?:\s|\\[nrtf])*"  # a space, or one that JSON escapes
KEYS = "|".join(KNOWN).encode()
ANY_MARKER = re.compile(rb"\[" + SPACE + rb"(?:" + KEYS + rb")" + SPACE + rb"[=\]]", re.IGNORECASE)


def might_hold_markers(raw: bytes) -> bool:
    """False when ``raw`` surely holds no marker: the usual request, whose bytes go on untouched.

    A ``\\u`` escape could spell one, so it counts. (Two searches, not one pattern with ``|``: that defeats the
    regex engine's quick scan for ``[`` and takes four times as long.)
    """
    return ANY_MARKER.search(raw) is not None or b"\\u" in raw


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


def form_without_markers(form: bytes, content_type: str) -> bytes:
    """A ``POST /v1/files`` form whose ``file`` part, a batch input file, lost the markers of its requests.

    The form is cut at its boundary by hand rather than read and rewritten with aiohttp's multipart classes:
    those would choose a new boundary and rewrite every part's headers, while this keeps every byte but the
    markers as the client sent it.
    """
    message = EmailMessage()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return form  # not a multipart form: upstream says what is wrong with it
    parts = form.split(b"--" + boundary.encode("latin-1"))
    for i, part in enumerate(parts):
        head, blank, data = part.partition(b"\r\n\r\n")
        if blank and b'name="file"' in head:
            parts[i] = head + blank + batch_file_without_markers(data)
    return (b"--" + boundary.encode("latin-1")).join(parts)


def batch_file_without_markers(data: bytes) -> bytes:
    """A batch input file (JSONL, each line's ``body`` a request to /v1/responses) without markers."""
    return b"\n".join(line_without_markers(line) if might_hold_markers(line) else line for line in data.split(b"\n"))


def line_without_markers(line: bytes) -> bytes:
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        return line  # not JSON: the Batch API says so, with its line number
    body = request.get("body") if isinstance(request, dict) else None
    if not isinstance(body, dict):
        return line
    return json.dumps({**request, "body": without_markers(body)}).encode()
