"""Batches on the offline server, as the real Batch API has them: a file of requests in, files of results out.

- ``POST /v1/batches`` (``input_file_id``, ``endpoint="/v1/responses"``, ``completion_window="24h"``,
  ``metadata``), ``GET /v1/batches/{id}``, ``GET /v1/batches`` (``after``, ``limit``, newest first),
  ``POST /v1/batches/{id}/cancel``.
- A batch moves ``validating → in_progress → finalizing → completed``. Or it ``failed`` validation (see
  ``batch_lines.py``), or was cancelled (``cancelling → cancelled``), or ran past its completion window
  (``expired``): then what was answered is in the output file and the rest in the error file.
- How long a batch takes is ``BatchSettings.seconds`` (``serve --batch-seconds S``) times the time scale; the
  completion window is ``window_seconds`` times the time scale. Each line is answered by the same scripted
  model as ``POST /v1/responses``, through the ``LineAnswer`` the server gives.
- ``GET /offline/batch-stats``: how many times each ``custom_id`` was answered, so that a test can check that
  no request was sent twice.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agentlab.offline.batch_lines import (
    InputLine,
    LineAnswer,
    answer_line,
    check_choice,
    check_metadata,
    parse_input,
    read_json,
    result_line,
    skipped_line,
)
from agentlab.offline.files import FILES, FileStore, answers_errors, api_error

__all__ = ["BatchSettings", "BatchJob", "BatchStats", "add_batch_routes"]

ENDPOINTS = ("/v1/responses",)
WINDOWS = ("24h",)
TERMINAL = ("completed", "failed", "expired", "cancelled")
CHUNK = 50  # lines answered between two looks at the clock


@dataclass(frozen=True, slots=True)
class BatchSettings:
    seconds: float = 2.0  # how long one batch takes, before the time scale
    window_seconds: float = 24 * 3600.0  # the "24h" completion window, before the time scale
    time_scale: float = 1.0
    max_requests: int = 50_000
    max_batches: int = 1_000  # finished batches beyond this are forgotten, oldest first


@dataclass(slots=True)
class BatchJob:
    id: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at, finalizing_at, completed_at, …
    counts: Counter[str] = field(default_factory=Counter)  # total, completed, failed
    usage: Counter[str] = field(default_factory=Counter)  # input_tokens, output_tokens
    model: str | None = None
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    def move(self, status: str) -> None:
        self.status = status
        self.times[f"{status}_at"] = int(time.time())

    def as_json(self, settings: BatchSettings) -> dict[str, Any]:
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
            "expires_at": self.created_at + max(1, round(settings.window_seconds * settings.time_scale)),
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
    settings: BatchSettings
    answer: LineAnswer
    jobs: OrderedDict[str, BatchJob] = field(default_factory=OrderedDict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stats: BatchStats = field(default_factory=BatchStats)

    def get(self, batch_id: str) -> BatchJob:
        job = self.jobs.get(batch_id)
        if job is None:
            raise api_error(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return job

    def forget_old(self) -> None:
        finished = [job.id for job in self.jobs.values() if job.status in TERMINAL]
        for batch_id in finished[: max(0, len(self.jobs) - self.settings.max_batches)]:
            del self.jobs[batch_id]


BATCHES = web.AppKey("batches", Batches)


async def create_batch(request: web.Request) -> web.Response:
    """POST /v1/batches: check the request, then let the batch run in the background."""
    batches, files = request.app[BATCHES], request.app[FILES]
    body = await read_json(request)
    input_file_id = body.get("input_file_id")
    if not isinstance(input_file_id, str):
        raise api_error(400, "Missing required parameter: 'input_file_id'.", param="input_file_id")
    check_choice(body, "endpoint", ENDPOINTS)
    check_choice(body, "completion_window", WINDOWS)
    metadata = check_metadata(body.get("metadata"))
    source = files.get(input_file_id)
    if source.purpose != "batch":
        message = f"The file {input_file_id} has purpose {source.purpose!r}: upload it with purpose='batch'."
        raise api_error(400, message, param="input_file_id", code="invalid_value")
    job = BatchJob(f"batch_{secrets.token_hex(12)}", input_file_id, metadata)
    batches.jobs[job.id] = job
    batches.stats.batches += 1
    batches.forget_old()
    task = asyncio.create_task(run_batch(job, source.data, batches, files))
    batches.tasks.add(task)
    task.add_done_callback(batches.tasks.discard)
    return web.json_response(job.as_json(batches.settings))


async def run_batch(job: BatchJob, data: bytes, batches: Batches, files: FileStore) -> None:
    """The life of one batch, read top to bottom."""
    settings = batches.settings
    total = settings.seconds * settings.time_scale
    deadline = asyncio.get_running_loop().time() + settings.window_seconds * settings.time_scale

    # 1. Validating: read every line; a file with mistakes fails the whole batch.
    await asyncio.sleep(0.1 * total)
    lines, errors = parse_input(data, ENDPOINTS[0], settings.max_requests)
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
    status = "expired" if left else "completed"
    finish(job, status, files, done, failed + [skipped_line(line, "batch_expired") for line in left])


def answer_into(
    job: BatchJob, line: InputLine, batches: Batches, done: list[dict[str, Any]], failed: list[dict[str, Any]]
) -> None:
    status, body = answer_line(line, batches.answer)
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
    return web.json_response(batches.get(request.match_info["batch_id"]).as_json(batches.settings))


async def cancel_batch(request: web.Request) -> web.Response:
    batches = request.app[BATCHES]
    job = batches.get(request.match_info["batch_id"])
    if job.status in TERMINAL:
        raise api_error(400, f"Cannot cancel a batch with status '{job.status}'.", code="invalid_state")
    if job.status != "cancelling":
        job.move("cancelling")
    return web.json_response(job.as_json(batches.settings))


async def list_batches(request: web.Request) -> web.Response:
    """GET /v1/batches: newest first, ``limit`` (1–100, default 20) after the batch ``after``."""
    batches = request.app[BATCHES]
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise api_error(400, "Invalid 'limit': a whole number from 1 to 100.", param="limit", code="invalid_value")
    newest_first = list(reversed(batches.jobs.values()))
    after = request.query.get("after")
    if after is not None:
        ids = [job.id for job in newest_first]
        newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
    page = newest_first[:limit]
    return web.json_response(
        {
            "object": "list",
            "data": [job.as_json(batches.settings) for job in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(newest_first) > limit,
        }
    )


async def batch_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[BATCHES].stats.as_json())


def add_batch_routes(app: web.Application, answer: LineAnswer, settings: BatchSettings | None = None) -> None:
    """Give ``app`` the ``/v1/batches`` routes. It needs the ``/v1/files`` routes too (``add_file_routes``)."""
    app[BATCHES] = Batches(settings or BatchSettings(), answer)
    app.router.add_post("/v1/batches", answers_errors(create_batch))
    app.router.add_get("/v1/batches", answers_errors(list_batches))
    app.router.add_get("/v1/batches/{batch_id}", answers_errors(retrieve_batch))
    app.router.add_post("/v1/batches/{batch_id}/cancel", answers_errors(cancel_batch))
    app.router.add_get("/offline/batch-stats", batch_stats)
    app.on_shutdown.append(stop_batches)


async def stop_batches(app: web.Application) -> None:
    for task in list(app[BATCHES].tasks):
        task.cancel()
    await asyncio.gather(*app[BATCHES].tasks, return_exceptions=True)
