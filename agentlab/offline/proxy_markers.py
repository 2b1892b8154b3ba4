"""What the proxy does with a request's text: find the markers, remove them, and time whole conversations.

The offline server reads the markers of the last user message; so does the proxy (``last_user_text``). Before a
request goes to a real model, ``without_markers`` removes them from the instructions and every input text: each
known marker goes, with the spaces just before it (``"What is 2 + 3? [duration=1]"`` → ``"What is 2 + 3?"``).

``raw_without_markers`` does the same on the body's bytes, which spares the proxy a ``json.dumps`` of the whole
request (the tools' schemas, the transcript) for every request that carries a marker. It is used only when it is
provably the same: the body has no ``\\u`` escape (one could spell a marker's character), and the markers found
in the bytes are exactly those found in the parsed texts. A match in the bytes holds no ``"`` and no ``\\``, so it lies
inside one JSON string, unescaped; anything else (a marker in a tool's description, one spelled with an escape)
makes the two lists differ, and the proxy cleans the parsed body instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from email.message import EmailMessage
from typing import Any, TypeVar

__all__ = [
    "ConversationClock",
    "KNOWN_MARKER",
    "form_without_markers",
    "last_user_text",
    "might_hold_markers",
    "raw_without_markers",
    "without_markers",
]

# markers.MARKER, for the known keys only; a match starts at its "[", so the scan is linear and quick
KNOWN_MARKER = re.compile(r"\[\s*(?:duration|fault|mistake|loop)\s*(?:=\s*[^\[\]]{0,40})?\]", re.IGNORECASE)
RAW_MARKER = re.compile(rb'\[ *(?:duration|fault|mistake|loop) *(?:= *[^\[\]"\\]{0,40})?\]', re.IGNORECASE)
SPACE = rb"(?:\s|\\[nrtf])*"  # a space, or one that JSON escapes
ANY_MARKER = re.compile(rb"\[" + SPACE + rb"(?:duration|fault|mistake|loop)" + SPACE + rb"[=\]]", re.IGNORECASE)
AnyText = TypeVar("AnyText", str, bytes)


def might_hold_markers(raw: bytes) -> bool:
    """False when ``raw`` surely holds no marker: the usual request, whose bytes go on untouched.

    A ``\\u`` escape could spell one, so it counts. (Two searches, not one pattern with ``|``: that defeats the
    regex engine's quick scan for ``[`` and takes four times as long.)
    """
    return ANY_MARKER.search(raw) is not None or b"\\u" in raw


def removed(pattern: re.Pattern[AnyText], text: AnyText, space: AnyText) -> AnyText:
    """``text`` without the matches of ``pattern``, each with the ``space`` characters just before it."""
    kept, position = [], 0
    for match in pattern.finditer(text):
        kept.append(text[position : match.start()].rstrip(space))
        position = match.end()
    kept.append(text[position:])
    return text[:0].join(kept)


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


def raw_without_markers(raw: bytes, body: dict[str, Any]) -> bytes | None:
    """``raw`` without its markers, when that is what cleaning ``body`` (parsed from it) gives; else None."""
    if b"\\u" in raw:
        return None
    in_bytes = sorted(match.group(0).decode() for match in RAW_MARKER.finditer(raw))
    in_texts = sorted(match.group(0) for text in texts_to_clean(body) for match in KNOWN_MARKER.finditer(text))
    return removed(RAW_MARKER, raw, b" ") if in_bytes == in_texts else None


def texts_to_clean(body: dict[str, Any]) -> list[str]:
    """The texts ``without_markers`` cleans: the instructions, and every text of every input item."""
    raw_input = body.get("input")
    items = raw_input if isinstance(raw_input, list) else [{"content": raw_input}]
    texts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    for item in items:
        for name in ("content", "output") if isinstance(item, dict) else ():
            texts += texts_of(item.get(name))
    return texts


def strip_markers(text: str) -> str:
    return removed(KNOWN_MARKER, text, " ")


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
