"""Files on the offline server, as the real API has them: ``/v1/files`` for batch input and output.

- ``POST /v1/files`` (multipart: ``file`` and ``purpose``): only ``purpose=batch`` can be uploaded, as the
  offline server has nothing else to do with a file. The answer is a ``FileObject``.
- ``GET /v1/files``, ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``.

The files live in memory, so they are held with a cap: an upload larger than ``max_file_bytes`` is a 413, and
when the files together pass ``max_stored_bytes`` (or ``max_files``) the oldest ones are dropped, the way a
cache forgets. A dropped file is then a 404, like any unknown id. Nothing here imports the rest of agentlab.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

__all__ = [
    "FileLimits",
    "FileStore",
    "StoredFile",
    "FILES",
    "ApiError",
    "add_file_routes",
    "answers_errors",
    "api_error",
]

UPLOAD_PURPOSES = ("batch",)
KNOWN_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
THIRTY_DAYS = 30 * 24 * 3600  # batch files expire after 30 days, as on the real API


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answer in OpenAI's shape, raised inside a handler and answered by ``answers_errors``."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def api_error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(status, message, param=param, code=code)


def answers_errors(handler: Handler) -> Handler:
    """Wrap a handler so that its ``ApiError`` becomes the JSON answer (these modules need no middleware)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return web.Response(status=exc.status, text=json.dumps(exc.body), content_type="application/json")

    return wrapped


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_file_bytes: int = 64 * 1024 * 1024
    max_stored_bytes: int = 512 * 1024 * 1024
    max_files: int = 10_000


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def as_json(self) -> dict[str, Any]:
        """The ``FileObject`` of the real API."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "expires_at": self.created_at + THIRTY_DAYS,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class FileStore:
    """The server's files, oldest first, within the limits."""

    def __init__(self, limits: FileLimits) -> None:
        self.limits = limits
        self.files: OrderedDict[str, StoredFile] = OrderedDict()
        self.stored_bytes = 0

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(f"file-{secrets.token_hex(12)}", filename, purpose, data)
        self.files[stored.id] = stored
        self.stored_bytes += len(data)
        while len(self.files) > 1 and (
            self.stored_bytes > self.limits.max_stored_bytes or len(self.files) > self.limits.max_files
        ):
            self.remove(next(iter(self.files)))
        return stored

    def get(self, file_id: str) -> StoredFile:
        found = self.files.get(file_id)
        if found is None:
            raise api_error(404, f"No such File object: {file_id}", param="id")
        return found

    def remove(self, file_id: str) -> StoredFile:
        removed = self.get(file_id)
        del self.files[file_id]
        self.stored_bytes -= len(removed.data)
        return removed


FILES = web.AppKey("files", FileStore)


async def upload_file(request: web.Request) -> web.Response:
    """POST /v1/files: read the multipart form, within the size limit, and keep the file."""
    store = request.app[FILES]
    limit = store.limits.max_file_bytes
    if (request.content_length or 0) > limit + 64 * 1024:  # a little room for the form around the file
        raise too_large(limit)
    if not request.content_type.startswith("multipart/"):
        raise api_error(400, "Upload the file as multipart/form-data with the fields 'file' and 'purpose'.")
    try:
        purpose, filename, data = await read_form(request, limit)
    except (ValueError, UnicodeError, AssertionError, HttpProcessingError, RequestPayloadError) as exc:  # not well made
        raise api_error(400, f"The multipart form could not be read ({exc}).", code="invalid_body") from None
    if purpose is None:
        raise api_error(
            400, "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in UPLOAD_PURPOSES:
        known = "is not supported offline" if purpose in KNOWN_PURPOSES else "is not a known purpose"
        raise api_error(
            400,
            f"Invalid value for 'purpose': {purpose!r} {known}; the offline server takes purpose='batch'.",
            param="purpose",
            code="invalid_value",
        )
    if data is None:
        raise api_error(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    return web.json_response(store.add(filename or "upload.jsonl", purpose, data).as_json())


async def read_form(request: web.Request, limit: int) -> tuple[str | None, str | None, bytes | None]:
    """The ``purpose``, the file's name and its bytes, counting the bytes as they come."""
    purpose = filename = data = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "purpose":
            purpose = (await part.read(decode=True)).decode("utf-8", "replace").strip()
        elif part.name == "file":
            filename, data = part.filename, await read_limited(part, limit)
    return purpose, filename, data


async def read_limited(part: BodyPartReader, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> ApiError:
    return api_error(413, f"The file is larger than {limit} bytes: split it into smaller files.", code="file_too_large")


async def list_files(request: web.Request) -> web.Response:
    purpose = request.query.get("purpose")
    data = [f.as_json() for f in reversed(request.app[FILES].files.values()) if purpose in (None, f.purpose)]
    return web.json_response({"object": "list", "data": data, "has_more": False})


async def retrieve_file(request: web.Request) -> web.Response:
    return web.json_response(request.app[FILES].get(request.match_info["file_id"]).as_json())


async def file_content(request: web.Request) -> web.Response:
    stored = request.app[FILES].get(request.match_info["file_id"])
    return web.Response(body=stored.data, content_type="application/octet-stream")


async def delete_file(request: web.Request) -> web.Response:
    removed = request.app[FILES].remove(request.match_info["file_id"])
    return web.json_response({"id": removed.id, "object": "file", "deleted": True})


def add_file_routes(app: web.Application, limits: FileLimits | None = None) -> FileStore:
    """Give ``app`` the ``/v1/files`` routes and a store of its own."""
    store = app[FILES] = FileStore(limits or FileLimits())
    app.router.add_post("/v1/files", answers_errors(upload_file))
    app.router.add_get("/v1/files", answers_errors(list_files))
    app.router.add_get("/v1/files/{file_id}", answers_errors(retrieve_file))
    app.router.add_get("/v1/files/{file_id}/content", answers_errors(file_content))
    app.router.add_delete("/v1/files/{file_id}", answers_errors(delete_file))
    return store
