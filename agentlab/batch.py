"""Past one machine: the provider's Batch API, not a home-made cluster.

The OpenAI Batch API takes a JSONL file of requests and returns a JSONL file of results within 24 hours, at
about half the price. It fits work that needs no answer now, and it is bounded by the provider, not by Python.

- ``write_batch_jsonl`` writes each conversation's **first turn** as one request line, with exactly the body
  that ``Agent.run`` would send.
- ``read_batch_results`` reads a results file back into one ``Outcome`` per conversation, in input order:
  nothing is lost (a missing line becomes ``Rejected``), whatever order the lines come in.

Only the first turn fits in a batch: a tool call needs your code to answer it, so a conversation that calls
tools continues with ``Agent.run(result.messages + tool outputs)`` or a second batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openai.types.responses import Response

from agentlab.agent import Agent, Prompt, check_prompts, start_transcript
from agentlab.errors import BackendError
from agentlab.results import Fulfilled, Outcome, Rejected, RunResult, Usage

__all__ = ["write_batch_jsonl", "read_batch_results", "request_body"]


def request_body(agent: Agent, prompt: Prompt) -> dict[str, Any]:
    """The JSON body of the first ``responses.create`` call that ``agent.run(prompt)`` makes."""
    return {
        "model": agent.model,
        "instructions": agent.instructions,
        "input": start_transcript(prompt),
        "tools": list(agent.tool_schemas),
        "parallel_tool_calls": agent.parallel_tool_calls,
    }


def write_batch_jsonl(agent: Agent, prompts: Iterable[Prompt], path: str | Path) -> Path:
    """One Batch API request line per prompt, with ``custom_id`` ``conv-0``, ``conv-1``, …"""
    out = Path(path)
    with out.open("w", encoding="utf-8") as file:
        for index, prompt in enumerate(check_prompts(prompts)):
            line = {
                "custom_id": f"conv-{index}",
                "method": "POST",
                "url": "/v1/responses",
                "body": request_body(agent, prompt),
            }
            file.write(json.dumps(line) + "\n")
    return out


def read_batch_results(path: str | Path, n: int) -> list[Outcome]:
    """Read a Batch API results file into ``n`` outcomes, in the order of the prompts that were written."""
    found: dict[int, Outcome] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        line = json.loads(raw)
        index = int(str(line.get("custom_id", "")).removeprefix("conv-"))
        found[index] = outcome_of(line, number)
    missing = BackendError("the results file has no line for this conversation: it was lost or is still pending")
    return [found.get(i, Rejected(missing)) for i in range(n)]


def outcome_of(line: dict[str, Any], number: int) -> Outcome:
    response = line.get("response") or {}
    status = response.get("status_code")
    if line.get("error") or status != 200:
        detail = line.get("error") or (response.get("body") or {}).get("error") or "no body"
        return Rejected(BackendError(f"batch line {number} failed ({status}): {detail}", status_code=status))
    parsed = Response.model_validate(response["body"])
    items = [item.model_dump(by_alias=True, exclude_none=True) for item in parsed.output]
    usage = Usage(parsed.usage.input_tokens, parsed.usage.output_tokens) if parsed.usage else Usage()
    now = time.perf_counter()
    return Fulfilled(RunResult(parsed.output_text, items, (), usage, 1, now, now))
