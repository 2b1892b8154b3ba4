"""How a batch line is answered: by the same scripted model, with the same checks, as ``POST /v1/responses``.

A line whose body the endpoint would refuse gets the endpoint's error answer (status and OpenAI-shaped body),
which the batch writes to its error file. A fault marker in the prompt (``[fault=500]``, ``[fault=429]``, …)
fails that line the same way; the batch's own time replaces the per-request latency.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agentlab.offline.answer import answer_checked, check_request
from agentlab.offline.batch_lines import LineAnswer
from agentlab.offline.batches import BatchSettings, add_batch_routes
from agentlab.offline.files import FileLimits, add_file_routes
from agentlab.offline.latency import ServerConfig
from agentlab.offline.validation import RequestError

__all__ = ["add_batch_api", "model_answer"]

FAULT_STATUS = {"429": 429, "500": 500}


def model_answer(config: ServerConfig) -> LineAnswer:
    """A ``LineAnswer`` that answers each line as the offline ``/v1/responses`` endpoint does."""

    def answer(body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
        try:
            request = check_request(body, config)
        except RequestError as exc:
            return exc.status, error_body(exc.message, "invalid_request_error", exc.param, exc.code)
        fault = config.faults.choose(key, 0, request.markers)
        if fault:
            status = FAULT_STATUS.get(fault, 500)
            kind = "requests" if status == 429 else "server_error"
            return status, error_body(f"The request failed on purpose (fault injection: {fault}).", kind, None, None)
        return 200, answer_checked(request, config, key).body

    return answer


def error_body(message: str, kind: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def add_batch_api(app: web.Application, config: ServerConfig) -> None:
    """Give the server ``/v1/files`` and ``/v1/batches``, with the limits and the batch time of ``config``."""
    limits = FileLimits(max_file_bytes=config.max_file_bytes, max_stored_bytes=config.max_stored_bytes)
    add_file_routes(app, limits)
    settings = BatchSettings(config.batch_seconds, config.batch_window_seconds, config.latency.time_scale)
    add_batch_routes(app, model_answer(config), settings)
