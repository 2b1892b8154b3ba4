"""Files and batches on the offline server, as the real API has them: a file of requests in, files of results out.

Files (``/v1/files``, for batch input and output):

- ``POST /v1/files`` (multipart: ``file`` and ``purpose``): only ``purpose=batch`` can be uploaded, as the
  offline server has nothing else to do with a file. The answer is a ``FileObject``.
- ``GET /v1/files``, ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``.
- The files live in memory, held with a cap: an upload larger than ``max_file_bytes`` is a 413, and when the
  files together pass ``max_stored_bytes`` (or ``MAX_FILES``) the oldest are dropped, the way a cache forgets.
- Given a folder (``serve --data-dir DIR``, ``start(data_dir=...)``), the server also keeps its files and
  batches there (``Folder``), and a server started on the same folder has them all, as the real API keeps
  them across its restarts: a batch that had not finished runs again from its first line, to its end.

Batches (``/v1/batches``):

- ``POST /v1/batches`` (``input_file_id``, ``endpoint="/v1/responses"``, ``completion_window="24h"``,
  ``metadata``), ``GET /v1/batches/{id}``, ``GET /v1/batches`` (``after``, ``limit``, newest first),
  ``POST /v1/batches/{id}/cancel``.
- A batch moves ``validating → in_progress → finalizing → completed``. Or it ``failed`` validation, or was
  cancelled (``cancelling → cancelled``), or ran past its completion window (``expired``): then what was
  answered is in the output file and the rest in the error file.
- It takes ``batch_seconds`` (``serve --batch-seconds S``) times the time scale; its completion window is
  ``batch_window_seconds`` times the time scale.
- ``GET /offline/batch-stats``: how many times each ``custom_id`` was answered, so that a test can check that
  no request was sent twice.

Two kinds of mistakes, as on the real API. **The file is wrong** (a line that is not JSON, has no
``custom_id``, repeats one, names another URL or model, or the file is empty or holds more than
``MAX_REQUESTS`` lines): the batch fails validation, its ``errors`` list each mistake with its line number
(``invalid_json_line``, ``duplicate_custom_id``, ``url_mismatch``, …), and nothing is answered. **One request
is wrong** (a body that ``POST /v1/responses`` would refuse): that line goes to the error file as the answer
the endpoint would have given, ``{"status_code": 400, "body": {"error": …}}``, and the other lines are
answered, by the same scripted model and checks as ``POST /v1/responses`` (``responses.py``). A fault marker
fails its line the same way; the batch's own time replaces the per-request latency.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import os
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from agentlab.offline.config import ServerConfig
from agentlab.offline.responses import RequestError, answer_checked, check_request

__all__ = ["add_batch_api", "parse_input", "MAX_REQUESTS"]

UPLOAD_PURPOSES = ("batch",)
KNOWN_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
THIRTY_DAYS = 30 * 24 * 3600  # batch files expire after 30 days, as on the real API
MAX_FILES = 10_000
ENDPOINTS = ("/v1/responses",)
WINDOWS = ("24h",)
TERMINAL = ("completed", "failed", "expired", "cancelled")
CHUNK = 50  # lines answered between two looks at the clock
MAX_REQUESTS = 50_000  # lines in one batch, as on the real API
MAX_BATCHES = 1_000  # finished batches beyond this are forgotten, oldest first
MAX_ERRORS = 100  # a file with thousands of bad lines lists only the first ones
MAX_CUSTOM_ID = 512
FAULT_STATUS = {"429": 429, "500": 500}


# -- Files ---------------------------------------------------------------------------------------------------------


class Folder:
    """Where a server given a data folder keeps one kind of thing (``files``, ``batches``) across a restart.

    Each thing is a JSON document (and a file's bytes beside it), written under a temporary name and then
    renamed, so that a server stopped in the middle of a write leaves the previous version, never half of one.
    Without a data folder it keeps nothing, and reads nothing back.
    """

    def __init__(self, data_dir: str | None, kind: str) -> None:
        self.path = Path(data_dir, kind) if data_dir else None
        if self.path:
            self.path.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, document: dict[str, Any], data: bytes | None = None) -> None:
        if self.path is None:
            return
        if data is not None:
            self.write(self.path / f"{name}.data", data)
        self.write(self.path / f"{name}.json", json.dumps({**document, "saved_ns": time.time_ns()}).encode())

    def write(self, target: Path, data: bytes) -> None:
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)

    def delete(self, name: str) -> None:
        if self.path is not None:
            for suffix in (".json", ".data"):
                (self.path / f"{name}{suffix}").unlink(missing_ok=True)

    def load(self) -> Iterator[tuple[dict[str, Any], bytes | None]]:
        """Every document kept, oldest first, with its bytes (None when it has none)."""
        if self.path is None:
            return
        documents = [json.loads(found.read_bytes()) for found in self.path.glob("*.json")]
        for document in sorted(documents, key=lambda kept: (kept["created_at"], kept["saved_ns"])):
            del document["saved_ns"]
            data = self.path / f"{document['id']}.data"
            yield document, data.read_bytes() if data.exists() else None


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

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.files: OrderedDict[str, StoredFile] = OrderedDict()
        self.stored_bytes = 0
        self.folder = Folder(config.data_dir, "files")
        for document, data in self.folder.load():
            self.keep(
                StoredFile(
                    document["id"], document["filename"], document["purpose"], data or b"", document["created_at"]
                )
            )

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(f"file-{secrets.token_hex(12)}", filename, purpose, data)
        self.folder.save(
            stored.id,
            {"id": stored.id, "filename": filename, "purpose": purpose, "created_at": stored.created_at},
            data,
        )
        return self.keep(stored)

    def keep(self, stored: StoredFile) -> StoredFile:
        self.files[stored.id] = stored
        self.stored_bytes += len(stored.data)
        while len(self.files) > 1 and (self.stored_bytes > self.config.max_stored_bytes or len(self.files) > MAX_FILES):
            self.remove(next(iter(self.files)))
        return stored

    def get(self, file_id: str) -> StoredFile:
        found = self.files.get(file_id)
        if found is None:
            raise RequestError(404, f"No such File object: {file_id}", param="id")
        return found

    def remove(self, file_id: str) -> StoredFile:
        removed = self.get(file_id)
        del self.files[file_id]
        self.stored_bytes -= len(removed.data)
        self.folder.delete(file_id)
        return removed


FILES = web.AppKey("files", FileStore)


async def upload_file(request: web.Request) -> web.Response:
    """POST /v1/files: read the multipart form, within the size limit, and keep the file."""
    store = request.app[FILES]
    limit = store.config.max_file_bytes
    if (request.content_length or 0) > limit + 64 * 1024:  # a little room for the form around the file
        raise too_large(limit)
    if not request.content_type.startswith("multipart/"):
        raise RequestError(400, "Upload the file as multipart/form-data with the fields 'file' and 'purpose'.")
    try:
        purpose, filename, data = await read_form(request, limit)
    except (ValueError, UnicodeError, AssertionError, HttpProcessingError, RequestPayloadError) as exc:  # not well made
        raise RequestError(400, f"The multipart form could not be read ({exc}).", code="invalid_body") from None
    if purpose is None:
        raise RequestError(
            400, "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in UPLOAD_PURPOSES:
        known = "is not supported offline" if purpose in KNOWN_PURPOSES else "is not a known purpose"
        raise RequestError(
            400,
            f"Invalid value for 'purpose': {purpose!r} {known}; the offline server takes purpose='batch'.",
            param="purpose",
            code="invalid_value",
        )
    if data is None:
        raise RequestError(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
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


def too_large(limit: int) -> RequestError:
    return RequestError(
        413, f"The file is larger than {limit} bytes: split it into smaller files.", code="file_too_large"
    )


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


# -- The lines of a batch ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputLine:
    number: int  # 1-based, as the errors count them
    custom_id: str
    body: dict[str, Any]
    key: str  # a stable hash of the line: seeds the latency jitter and names the ids


def parse_input(data: bytes, endpoint: str) -> tuple[list[InputLine], list[dict[str, Any]]]:
    """The lines of an input file, and the validation errors (if any, the batch fails).

    It reads a line at a time and stops at ``MAX_REQUESTS``: a file of 480,000 lines costs no more than one at
    the cap. ``run_batch`` calls it in a thread, so that the server answers others meanwhile.
    """
    lines: list[InputLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(io.BytesIO(data), 1):
        if not raw.strip():
            continue
        if len(lines) == MAX_REQUESTS:
            message = f"The batch has more than {MAX_REQUESTS} requests, the most one batch can hold: split the file."
            errors.append(batch_error("too_many_tasks", message, None))
            break
        line, problem = check_line(raw.removesuffix(b"\n"), number, endpoint, seen, models)
        if problem:
            errors.append(problem)
        elif line:
            lines.append(line)
        if len(errors) >= MAX_ERRORS:
            break
    if not lines and not errors:
        errors.append(batch_error("empty_file", "The input file is empty: write one JSON request per line.", None))
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


def answer_line(line: InputLine, config: ServerConfig) -> tuple[int, dict[str, Any]]:
    """Answer one line as ``POST /v1/responses`` would: status and body. A bug of ours is a 500 on that line."""
    try:
        request = check_request(line.body, config)
        fault = config.faults.choose(line.key, 0, request.markers)
        if fault:
            message = f"The request failed on purpose (fault injection: {fault})."
            status = FAULT_STATUS.get(fault, 500)
            raise RequestError(status, message, kind="requests" if status == 429 else "server_error")
        return 200, answer_checked(request, config, line.key).body
    except RequestError as exc:
        return exc.status, exc.body()
    except Exception as exc:
        message = f"The offline server failed on this request: {type(exc).__name__}: {exc}"
        return 500, RequestError(500, message, kind="server_error").body()


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


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError, HttpProcessingError, RequestPayloadError):
        raise RequestError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def check_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if body.get(name) is None:
        raise RequestError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if body[name] not in allowed:
        message = f"Invalid value for '{name}': {body[name]!r}; the offline server supports {list(allowed)}."
        raise RequestError(400, message, param=name, code="invalid_value")


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
        raise RequestError(400, message, param="metadata", code="invalid_value")
    return dict(metadata)


# -- Batches -----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class BatchJob:
    id: str
    input_file_id: str
    metadata: dict[str, str] | None
    expires_at: int
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at, finalizing_at, completed_at, …
    counts: Counter[str] = field(default_factory=Counter)  # total, completed, failed
    usage: Counter[str] = field(default_factory=Counter)  # input_tokens, output_tokens
    model: str | None = None
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    folder: Folder | None = field(default=None, repr=False, compare=False)  # where it is kept, if anywhere

    def move(self, status: str) -> None:
        self.status = status
        self.times[f"{status}_at"] = int(time.time())
        self.save()

    def save(self) -> None:
        if self.folder is not None:
            kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "folder"}
            self.folder.save(self.id, kept)

    @classmethod
    def kept(cls, document: dict[str, Any], folder: Folder) -> BatchJob:
        """A batch as a server on the same data folder kept it."""
        counts, usage = Counter(document.pop("counts")), Counter(document.pop("usage"))
        return cls(**document, counts=counts, usage=usage, folder=folder)

    def as_json(self) -> dict[str, Any]:
        """The ``Batch`` object of the real API."""
        usage = {
            "input_tokens": self.usage["input_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.usage["input_tokens"] + self.usage["output_tokens"],
        }
        stamps = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINTS[0],
            "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": WINDOWS[0],
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            **{f"{name}_at": self.times.get(f"{name}_at") for name in stamps},
            "request_counts": {name: self.counts[name] for name in ("total", "completed", "failed")},
            "usage": usage,
            "metadata": self.metadata,
        }


@dataclass(slots=True)
class BatchStats:
    batches: int = 0
    answered: Counter[str] = field(default_factory=Counter)  # custom_id → how many times it was answered

    def as_json(self) -> dict[str, Any]:
        repeated = {cid: n for cid, n in self.answered.items() if n > 1}
        return {"batches": self.batches, "lines": sum(self.answered.values()), "repeated": repeated}


@dataclass(slots=True)
class Batches:
    config: ServerConfig
    jobs: OrderedDict[str, BatchJob] = field(default_factory=OrderedDict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stats: BatchStats = field(default_factory=BatchStats)
    folder: Folder = field(init=False)

    def __post_init__(self) -> None:
        self.folder = Folder(self.config.data_dir, "batches")
        for document, _ in self.folder.load():
            job = BatchJob.kept(document, self.folder)
            self.jobs[job.id] = job

    def start(self, job: BatchJob, data: bytes, files: FileStore, window: float) -> None:
        """Run ``job`` in the background, within ``window`` seconds of its completion window."""
        task = asyncio.create_task(run_batch(job, data, self, files, window))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def get(self, batch_id: str) -> BatchJob:
        job = self.jobs.get(batch_id)
        if job is None:
            raise RequestError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return job

    def forget_old(self) -> None:
        finished = [job.id for job in self.jobs.values() if job.status in TERMINAL]
        for batch_id in finished[: max(0, len(self.jobs) - MAX_BATCHES)]:
            del self.jobs[batch_id]
            self.folder.delete(batch_id)


BATCHES = web.AppKey("batches", Batches)


async def create_batch(request: web.Request) -> web.Response:
    """POST /v1/batches: check the request, then let the batch run in the background."""
    batches, files = request.app[BATCHES], request.app[FILES]
    body = await read_json(request)
    input_file_id = body.get("input_file_id")
    if not isinstance(input_file_id, str):
        raise RequestError(400, "Missing required parameter: 'input_file_id'.", param="input_file_id")
    check_choice(body, "endpoint", ENDPOINTS)
    check_choice(body, "completion_window", WINDOWS)
    metadata = check_metadata(body.get("metadata"))
    source = files.get(input_file_id)
    if source.purpose != "batch":
        message = f"The file {input_file_id} has purpose {source.purpose!r}: upload it with purpose='batch'."
        raise RequestError(400, message, param="input_file_id", code="invalid_value")
    window = batches.config.batch_window_seconds * batches.config.latency.time_scale
    job = BatchJob(f"batch_{secrets.token_hex(12)}", input_file_id, metadata, int(time.time()) + max(1, round(window)))
    job.folder = batches.folder
    job.save()
    batches.jobs[job.id] = job
    batches.stats.batches += 1
    batches.forget_old()
    batches.start(job, source.data, files, window)
    return web.json_response(job.as_json())


async def resume_batches(app: web.Application) -> None:
    """The batches a server on the same data folder left unfinished run again, from their first line."""
    batches, files = app[BATCHES], app[FILES]
    for job in [job for job in batches.jobs.values() if job.status not in TERMINAL]:
        job.counts.clear()
        job.usage.clear()
        source = files.files.get(job.input_file_id)
        if source is None:
            job.errors = [batch_error("missing_file", f"The input file {job.input_file_id} is gone.", None)]
            job.move("failed")
        else:
            batches.start(job, source.data, files, max(0.0, job.expires_at - time.time()))


async def run_batch(job: BatchJob, data: bytes, batches: Batches, files: FileStore, window: float) -> None:
    """The life of one batch, read top to bottom."""
    config = batches.config
    total = config.batch_seconds * config.latency.time_scale
    deadline = asyncio.get_running_loop().time() + window

    # 1. Validating: read every line; a file with mistakes fails the whole batch.
    await asyncio.sleep(0.1 * total)
    lines, errors = await asyncio.to_thread(parse_input, data, ENDPOINTS[0])
    job.model = next((line.body["model"] for line in lines if isinstance(line.body.get("model"), str)), None)
    if job.status == "cancelling":
        return finish(job, "cancelled", files, [], [skipped_line(line, "batch_cancelled") for line in lines])
    if errors:
        job.errors = errors
        return job.move("failed")

    # 2. In progress: answer the lines a chunk at a time, spread over the batch's time, until done,
    #    cancelled, or out of the completion window.
    job.move("in_progress")
    job.counts["total"] = len(lines)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    pause = 0.8 * total / max(1, -(-len(lines) // CHUNK))
    position = 0
    while position < len(lines) and job.status == "in_progress":
        if asyncio.get_running_loop().time() >= deadline:
            break
        for line in lines[position : position + CHUNK]:
            answer_into(job, line, batches, done, failed)
        position += CHUNK
        await asyncio.sleep(pause)

    # 3. Finalizing: write the output and error files. Requests that never ran go to the error file.
    left = lines[position:]
    if job.status == "cancelling":
        return finish(job, "cancelled", files, done, failed + [skipped_line(line, "batch_cancelled") for line in left])
    job.move("finalizing")
    await asyncio.sleep(0.1 * total)
    status = "cancelled" if job.status == "cancelling" else "expired" if left else "completed"  # a cancel holds
    finish(job, status, files, done, failed + [skipped_line(line, "batch_expired") for line in left])


def answer_into(
    job: BatchJob, line: InputLine, batches: Batches, done: list[dict[str, Any]], failed: list[dict[str, Any]]
) -> None:
    status, body = answer_line(line, batches.config)
    batches.stats.answered[line.custom_id] += 1
    usage = body.get("usage") if status == 200 else None
    if isinstance(usage, dict):
        job.usage.update(input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0))
    (done if status == 200 else failed).append(result_line(line, status, body))
    job.counts["completed" if status == 200 else "failed"] += 1


def finish(
    job: BatchJob, status: str, files: FileStore, done: list[dict[str, Any]], failed: list[dict[str, Any]]
) -> None:
    """Store the results as files (purpose ``batch_output``) and move the batch to its last status."""
    if done:
        job.output_file_id = files.add(f"{job.id}_output.jsonl", "batch_output", jsonl(done)).id
    if failed:
        job.error_file_id = files.add(f"{job.id}_error.jsonl", "batch_output", jsonl(failed)).id
    job.move(status)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")


async def retrieve_batch(request: web.Request) -> web.Response:
    batches = request.app[BATCHES]
    return web.json_response(batches.get(request.match_info["batch_id"]).as_json())


async def cancel_batch(request: web.Request) -> web.Response:
    batches = request.app[BATCHES]
    job = batches.get(request.match_info["batch_id"])
    if job.status in TERMINAL:
        raise RequestError(400, f"Cannot cancel a batch with status '{job.status}'.", code="invalid_state")
    if job.status != "cancelling":
        job.move("cancelling")
    return web.json_response(job.as_json())


async def list_batches(request: web.Request) -> web.Response:
    """GET /v1/batches: newest first, ``limit`` (1–100, default 20) after the batch ``after``."""
    batches = request.app[BATCHES]
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise RequestError(400, "Invalid 'limit': a whole number from 1 to 100.", param="limit", code="invalid_value")
    newest_first = list(reversed(batches.jobs.values()))
    after = request.query.get("after")
    if after is not None:
        ids = [job.id for job in newest_first]
        newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
    page = newest_first[:limit]
    return web.json_response(
        {
            "object": "list",
            "data": [job.as_json() for job in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(newest_first) > limit,
        }
    )


async def batch_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[BATCHES].stats.as_json())


async def stop_batches(app: web.Application) -> None:
    for task in list(app[BATCHES].tasks):
        task.cancel()
    await asyncio.gather(*app[BATCHES].tasks, return_exceptions=True)


def add_batch_api(app: web.Application, config: ServerConfig) -> None:
    """Give ``app`` the ``/v1/files`` and ``/v1/batches`` routes, with the limits and the batch time of ``config``."""
    app[FILES] = FileStore(config)
    app[BATCHES] = Batches(config)
    app.router.add_post("/v1/files", upload_file)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{file_id}", retrieve_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_delete("/v1/files/{file_id}", delete_file)
    app.router.add_post("/v1/batches", create_batch)
    app.router.add_get("/v1/batches", list_batches)
    app.router.add_get("/v1/batches/{batch_id}", retrieve_batch)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel_batch)
    app.router.add_get("/offline/batch-stats", batch_stats)
    app.on_startup.append(resume_batches)
    app.on_shutdown.append(stop_batches)
