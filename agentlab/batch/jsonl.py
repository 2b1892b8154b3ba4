"""The Batch API's files: request lines out, result lines back in. The building blocks of ``run_batched``.

- ``request_line`` / ``write_batch_jsonl``: one line per conversation, with exactly the body that
  ``Agent.run`` would send for its next turn, under a ``custom_id`` (``conv-3``, or ``<run>-conv-3-turn-2``).
- ``parse_results`` / ``read_batch_results``: the lines of the output and error files, matched back by
  ``custom_id`` whatever their order. A bad line never raises: a line that is cut off or does not parse, a
  body that is not a ``Response``, or an error answer each make *that* conversation ``Rejected`` with the
  reason; a ``custom_id`` that is not ours is skipped; the other lines are read.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pydantic
from openai.types.responses import Response

from agentlab.agent import Agent, InputItem, Prompt, check_prompts, start_transcript
from agentlab.errors import BackendError
from agentlab.records import Fulfilled, Outcome, Rejected, RunResult, Usage

__all__ = ["custom_id", "parse_results", "read_batch_results", "request_body", "request_line", "write_batch_jsonl"]

ENDPOINT: Final = "/v1/responses"
CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"([^"\\]{1,512})"')


def custom_id(index: int, turn: int | None = None, run_id: str = "") -> str:
    """``conv-3`` for a first-turn file; ``5f3a9c01-conv-3-turn-2`` for the turns of a ``run_batched`` run."""
    return f"conv-{index}" if turn is None else f"{run_id}-conv-{index}-turn-{turn}"


def request_body(agent: Agent, prompt: Prompt | list[InputItem]) -> dict[str, Any]:
    """The JSON body of the ``responses.create`` call that ``Agent.run`` makes with this conversation so far."""
    body: dict[str, Any] = {
        "model": agent.model,
        "instructions": agent.instructions,
        "input": start_transcript(prompt),
        "tools": list(agent.tool_schemas),
    }
    if agent.parallel_tool_calls is not None:  # None: not sent, the API's default (as Agent.run does)
        body["parallel_tool_calls"] = agent.parallel_tool_calls
    if agent.reasoning_effort is not None:
        body["reasoning"] = {"effort": agent.reasoning_effort}
    return body


def request_line(agent: Agent, messages: Prompt | list[InputItem], line_id: str) -> str:
    """One line of a Batch API input file."""
    return json.dumps({"custom_id": line_id, "method": "POST", "url": ENDPOINT, "body": request_body(agent, messages)})


def write_batch_jsonl(agent: Agent, prompts: Iterable[Prompt], path: str | Path) -> Path:
    """One Batch API request line per prompt (its first turn), with ``custom_id`` ``conv-0``, ``conv-1``, …"""
    out = Path(path)
    lines = [request_line(agent, prompt, custom_id(i)) for i, prompt in enumerate(check_prompts(prompts))]
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return out


def parse_results(text: str) -> dict[str, Response | BackendError]:
    """Each ``custom_id`` of a results file (output or error file) → its ``Response``, or why there is none."""
    found: dict[str, Response | BackendError] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip():
            line_id, result = parse_line(raw, number)
            if line_id is not None:
                found[line_id] = result
    return found


def parse_line(raw: str, number: int) -> tuple[str | None, Response | BackendError]:
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        match = CUSTOM_ID.search(raw)  # a line cut off: its custom_id may still be readable
        return (match.group(1) if match else None), BackendError(f"batch line {number} is not valid JSON (cut off?)")
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        return None, BackendError(f"batch line {number} has no custom_id")
    response: dict[str, Any] = line["response"] if isinstance(line.get("response"), dict) else {}
    status = response.get("status_code")
    body: dict[str, Any] = response["body"] if isinstance(response.get("body"), dict) else {}
    if line.get("error") or status != 200:
        detail = line.get("error") or body.get("error") or "no body"
        code = status if isinstance(status, int) else None
        return line["custom_id"], BackendError(f"batch line {number} failed ({status}): {detail}", status_code=code)
    try:
        return line["custom_id"], Response.model_validate(body)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem.get("loc", ()))) or "body"
        return line["custom_id"], BackendError(
            f"batch line {number}: the body is not a Response ({where}: {problem['msg']})"
        )


def read_batch_results(path: str | Path, n: int) -> list[Outcome]:
    """Read a first-turn results file into ``n`` outcomes, in the order of the prompts that were written.

    Nothing is lost and nothing raises: a missing or broken line makes its conversation ``Rejected``.
    """
    found = parse_results(Path(path).read_text(encoding="utf-8", errors="replace"))
    missing = BackendError("the results file has no line for this conversation: it was lost or is still pending")
    return [outcome_of(found.get(custom_id(i), missing)) for i in range(n)]


def outcome_of(result: Response | BackendError) -> Outcome:
    if isinstance(result, BackendError):
        return Rejected(result)
    items = [item.model_dump(by_alias=True, exclude_none=True) for item in result.output]
    now = time.perf_counter()
    return Fulfilled(RunResult(result.output_text, items, (), usage_of(result), 1, now, now))


def usage_of(response: Response) -> Usage:
    """The tokens of one answer, as the server reported them (none reported: zero)."""
    return Usage(response.usage.input_tokens, response.usage.output_tokens) if response.usage else Usage()
