"""The lines of a batch: reading the input file the way the real Batch API checks it, and writing results.

Two kinds of mistakes, as on the real API:

- **The file is wrong** (a line that is not JSON, has no ``custom_id``, repeats one, names another URL or
  another model, or the file is empty): the whole batch fails validation. Its ``errors`` list each mistake
  with its line number (``invalid_json_line``, ``duplicate_custom_id``, ``url_mismatch``, …), and nothing is
  answered.
- **One request is wrong** (its body is one that ``POST /v1/responses`` would refuse): that line goes to the
  error file as the answer the endpoint would have given, ``{"status_code": 400, "body": {"error": …}}``,
  and the other lines are answered.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from agentlab.offline.files import api_error

__all__ = [
    "InputLine",
    "LineAnswer",
    "parse_input",
    "answer_line",
    "result_line",
    "skipped_line",
    "check_choice",
    "check_metadata",
    "read_json",
    "MAX_ERRORS",
]

# How a line is answered: (body, key) → (HTTP status, JSON body), the same as POST /v1/responses would.
LineAnswer: TypeAlias = Callable[[dict[str, Any], str], tuple[int, dict[str, Any]]]
MAX_ERRORS = 100  # a file with thousands of bad lines lists only the first ones
MAX_CUSTOM_ID = 512


@dataclass(frozen=True, slots=True)
class InputLine:
    number: int  # 1-based, as the errors count them
    custom_id: str
    body: dict[str, Any]
    key: str  # a stable hash of the line: seeds the latency jitter and names the ids


def parse_input(data: bytes, endpoint: str, max_requests: int) -> tuple[list[InputLine], list[dict[str, Any]]]:
    """The lines of an input file, and the validation errors (if any, the batch fails)."""
    lines: list[InputLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        line, problem = check_line(raw, number, endpoint, seen, models)
        if problem:
            errors.append(problem)
        elif line:
            lines.append(line)
        if len(errors) >= MAX_ERRORS:
            break
    if not lines and not errors:
        errors.append(batch_error("empty_file", "The input file is empty: write one JSON request per line.", None))
    if len(lines) > max_requests:
        message = f"The batch has {len(lines)} requests; the most one batch can hold is {max_requests}."
        errors.append(batch_error("too_many_tasks", message, None))
    return lines, errors


def check_line(
    raw: bytes, number: int, endpoint: str, seen: set[str], models: set[str]
) -> tuple[InputLine | None, dict[str, Any] | None]:
    """One input line, or the error that fails the batch."""
    try:
        line = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, batch_error("invalid_json_line", "This line is not parseable as valid JSON.", number)
    if not isinstance(line, dict):
        return None, batch_error("invalid_json_line", "This line is not a JSON object.", number)
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        message = "Each line needs a 'custom_id': a string that names the request (at most 512 characters)."
        return None, batch_error("missing_required_parameter", message, number, "custom_id")
    if custom_id in seen:
        return None, batch_error("duplicate_custom_id", f"The custom_id {custom_id!r} is used twice.", number)
    seen.add(custom_id)
    if line.get("method", "POST") != "POST":
        return None, batch_error("invalid_method", "The 'method' of a line must be 'POST'.", number, "method")
    if line.get("url") != endpoint:
        message = f"The url {line.get('url')!r} does not match the batch's endpoint {endpoint!r}."
        return None, batch_error("url_mismatch", message, number, "url")
    body = line.get("body")
    if not isinstance(body, dict):
        return None, batch_error("invalid_request", "The 'body' of a line must be a JSON object.", number, "body")
    model = body.get("model")
    if isinstance(model, str):
        models.add(model)
        if len(models) > 1:
            message = f"All the requests of a batch must use the same model; this line uses {model!r}."
            return None, batch_error("model_mismatch", message, number, "body.model")
    key = hashlib.blake2b(raw, digest_size=8).hexdigest()
    return InputLine(number, custom_id, body, key), None


def batch_error(code: str, message: str, line: int | None, param: str | None = None) -> dict[str, Any]:
    """One entry of ``Batch.errors.data``."""
    return {"code": code, "line": line, "message": message, "param": param}


def answer_line(line: InputLine, answer: LineAnswer) -> tuple[int, dict[str, Any]]:
    """Answer one line. A bug of ours becomes a 500 on that line, never a failed server."""
    try:
        return answer(line.body, line.key)
    except Exception as exc:
        message = f"The offline server failed on this request: {type(exc).__name__}: {exc}"
        return 500, {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def result_line(line: InputLine, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """A line of the output file (status 200) or of the error file (any other status)."""
    response = {"status_code": status, "request_id": f"req_{secrets.token_hex(16)}", "body": body}
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": line.custom_id,
        "response": response,
        "error": None,
    }


def skipped_line(line: InputLine, code: str) -> dict[str, Any]:
    """A line of the error file for a request that never ran: the batch expired or was cancelled first."""
    messages = {
        "batch_expired": "This request could not be executed before the completion window expired.",
        "batch_cancelled": "This request was not executed because the batch was cancelled.",
    }
    error = {"code": code, "message": messages[code]}
    return {"id": f"batch_req_{secrets.token_hex(12)}", "custom_id": line.custom_id, "response": None, "error": error}


# -- Checks of the POST /v1/batches request itself ----------------------------------------------------------


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError, HttpProcessingError, RequestPayloadError):
        raise api_error(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise api_error(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def check_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if body.get(name) is None:
        raise api_error(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if body[name] not in allowed:
        message = f"Invalid value for '{name}': {body[name]!r}; the offline server supports {list(allowed)}."
        raise api_error(400, message, param=name, code="invalid_value")


def check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if (
        not isinstance(metadata, dict)
        or len(metadata) > 16
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
        )
    ):
        message = "Invalid 'metadata': at most 16 pairs of strings (keys up to 64 characters, values up to 512)."
        raise api_error(400, message, param="metadata", code="invalid_value")
    return dict(metadata)
