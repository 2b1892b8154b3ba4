"""``run_batched``: whole tool-calling conversations through the Batch API, one round per turn, resumable.

Round k sends the next model call of every conversation still open as **one batch**. When the batch is done,
each conversation reads its answer: a conversation that answered drops out; one that asked for tools runs them
here (all conversations at once, through ``Tool.call``) and goes into round k+1. A conversation past
``max_turns``, or whose request failed, is ``Rejected`` with the reason; the others go on.

After every step the state is saved to ``state_path`` (see ``state.py``), so calling ``run_batched`` again with
the same ``state_path`` goes on where it stopped, and never sends a conversation's turn twice: a batch that
was created is found again by its input file, never created a second time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types import Batch as ApiBatch
from openai.types.responses import Response, ResponseFunctionToolCall

from agentlab.agent import Agent, InputItem, Prompt, check_prompts
from agentlab.batch.display import RoundDisplay, make_display
from agentlab.batch.jsonl import ENDPOINT, custom_id, parse_results, request_line
from agentlab.batch.outcomes import build_batch
from agentlab.batch.report import Price
from agentlab.batch.state import Conversation, RunState, load_state, save_state
from agentlab.client import default_client
from agentlab.errors import BackendError, ConfigurationError, translate_error
from agentlab.records import Batch, Outcome

__all__ = ["run_batched"]

TERMINAL = ("completed", "failed", "expired", "cancelled")
MISSING = {
    "completed": "the batch's result files have no line for this request",
    "expired": "the batch expired (its completion window ran out) before this request ran",
    "cancelled": "the batch was cancelled before this request ran",
}


async def run_batched(
    agent: Agent,
    prompts: Iterable[Prompt],
    *,
    state_path: str | Path | None = None,
    poll_interval: float = 1.0,
    prices: Mapping[str, Price] | None = None,
    progress: bool | RoundDisplay = False,
) -> Batch[Outcome]:
    """Run every conversation through the Batch API, turn by turn; return their outcomes in input order.

    ``poll_interval`` is the longest wait between two looks at a batch (the waits start short and grow to
    it): seconds offline, a minute or more against the real API. ``prices`` maps a model to its ``Price`` for
    the report's cost (``report.cost``), live against batched. ``progress=True`` shows each round's batch.
    """
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be a number of seconds greater than 0, got {poll_interval!r}")
    checked = check_prompts(prompts)
    path = Path(state_path) if state_path is not None else None
    if path is not None and not path.parent.is_dir():
        raise ConfigurationError(
            f"state_path={str(path)!r}: its folder {str(path.parent)!r} does not exist; make it first"
        )
    state = (load_state(path, agent, checked) if path else None) or RunState.start(agent, checked)

    def save() -> None:
        if path is not None:
            save_state(path, state)

    save()
    client = agent.client or default_client()
    display = make_display(progress)
    while state.open():
        await run_round(agent, client, state, save, poll_interval, display)
    return build_batch(agent, state, prices)


async def run_round(
    agent: Agent,
    client: AsyncOpenAI,
    state: RunState,
    save: Callable[[], None],
    poll_interval: float,
    display: RoundDisplay | None,
) -> None:
    """One round, read top to bottom. Each step is saved before the next one starts."""
    try:
        # 1. Upload the next turn of every open conversation as one JSONL file.
        if state.pending is None:
            state.pending = await upload_round(agent, client, state)
            save()
        # 2. Create the batch, or find the one that a run that died had already created from this file.
        if state.pending.get("batch_id") is None:
            state.pending["batch_id"] = await create_or_adopt(client, state)
            save()
        # 3. Wait until the batch is done, then read its output and error files.
        batch = await wait_for(client, state.pending["batch_id"], state.round, poll_interval, display)
        results = {**await read_file(client, batch.error_file_id), **await read_file(client, batch.output_file_id)}
    except openai.APIError as exc:
        raise explain_resume(translate_error(exc, client)) from exc
    # 4. Each conversation reads its answer; those that asked for tools run them here, all at once.
    await apply_results(agent, state, batch, results)
    counts = batch.request_counts
    state.rounds.append(
        {
            "round": state.round,
            "batch_id": batch.id,
            "requests": len(state.pending["custom_ids"]),
            "submitted": state.pending["submitted"],
            "ended": time.time(),
            "status": batch.status,
            "completed": counts.completed if counts else 0,
            "failed": counts.failed if counts else 0,
        }
    )
    state.pending, state.round = None, state.round + 1
    save()


async def upload_round(agent: Agent, client: AsyncOpenAI, state: RunState) -> dict[str, Any]:
    open_now = state.open()
    ids = {custom_id(i, state.conversations[i].turns + 1, state.run_id): i for i in open_now}
    lines = [request_line(agent, state.conversations[i].messages, line_id) for line_id, i in ids.items()]
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    uploaded = await client.files.create(file=(f"round-{state.round}.jsonl", data), purpose="batch")
    return {"input_file_id": uploaded.id, "batch_id": None, "custom_ids": ids, "submitted": time.time()}


async def create_or_adopt(client: AsyncOpenAI, state: RunState) -> str:
    """The batch of this round's file: found among the newest batches if it exists, else created now."""
    assert state.pending is not None
    file_id = state.pending["input_file_id"]
    seen = 0
    async for batch in client.batches.list(limit=100):
        if batch.input_file_id == file_id:
            return batch.id
        seen += 1
        if batch.created_at < state.pending["submitted"] - 60 or seen >= 1000:
            break
    # the provider's own list of batches can then say which run and round each one is (lesson 08 counts them)
    metadata = {
        "agentlab_run": state.fingerprint[:16],
        "agentlab_run_id": state.run_id,
        "agentlab_round": str(state.round),
    }
    created = await client.batches.create(
        input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
    )
    return created.id


async def wait_for(
    client: AsyncOpenAI, batch_id: str, round_number: int, poll_interval: float, display: RoundDisplay | None
) -> ApiBatch:
    """Look at the batch until it ends, waiting a little longer each time, up to ``poll_interval``."""
    wait = min(0.02, poll_interval)
    while True:
        batch = await client.batches.retrieve(batch_id)
        if display:
            display.show(round_number, batch)
        if batch.status in TERMINAL:
            return batch
        await asyncio.sleep(wait)
        wait = min(poll_interval, wait * 1.5)


async def read_file(client: AsyncOpenAI, file_id: str | None) -> dict[str, Response | BackendError]:
    if file_id is None:
        return {}
    content = await client.files.content(file_id)
    return parse_results(content.text)


async def apply_results(
    agent: Agent, state: RunState, batch: ApiBatch, results: dict[str, Response | BackendError]
) -> None:
    """Give each conversation of the round its answer, or the reason it has none."""
    assert state.pending is not None
    submitted, now = state.pending["submitted"], time.time()
    missing = BackendError(MISSING.get(batch.status) or failed_reason(batch))
    with_calls: list[tuple[Conversation, list[ResponseFunctionToolCall]]] = []
    for line_id, index in state.pending["custom_ids"].items():
        conv = state.conversations[index]
        result = results.get(line_id, missing)
        if isinstance(result, BackendError):
            reject(conv, str(result), "backend", now)
            continue
        conv.turns += 1
        conv.spans.append(["model", agent.model, submitted, now])
        conv.usage = [conv.usage[0] + usage_in(result), conv.usage[1] + usage_out(result)]
        conv.messages.extend(item.model_dump(by_alias=True, exclude_none=True) for item in result.output)
        calls = [item for item in result.output if isinstance(item, ResponseFunctionToolCall)]
        if not calls:
            conv.status, conv.output_text, conv.ended = "answered", result.output_text, now
        elif conv.turns >= agent.max_turns:
            reject(conv, f"the conversation did not finish within max_turns={agent.max_turns}", "max_turns", now)
        else:
            with_calls.append((conv, calls))
    await asyncio.gather(*(run_tools(agent, conv, calls) for conv, calls in with_calls))


async def run_tools(agent: Agent, conv: Conversation, calls: list[ResponseFunctionToolCall]) -> None:
    """Run one conversation's tool calls (one after another, or together) and add their outputs."""

    async def run_one(call: ResponseFunctionToolCall) -> InputItem:
        start = time.time()
        output = await agent.call_tool(call.name, call.arguments)
        conv.spans.append(["tool", call.name, start, time.time()])
        return {"type": "function_call_output", "call_id": call.call_id, "output": output}

    if agent.parallel_tool_calls:
        outputs = list(await asyncio.gather(*(run_one(call) for call in calls)))
    else:
        outputs = [await run_one(call) for call in calls]
    conv.messages.extend(outputs)


def reject(conv: Conversation, reason: str, kind: str, now: float) -> None:
    conv.status, conv.error, conv.error_kind, conv.ended = "rejected", reason, kind, now


def failed_reason(batch: ApiBatch) -> str:
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    listed = "; ".join(f"line {e.line}: {e.code}: {e.message}" for e in errors[:3]) or "no reason given"
    return f"the batch {batch.id} ended {batch.status}: {listed}"


def usage_in(response: Response) -> int:
    return response.usage.input_tokens if response.usage else 0


def usage_out(response: Response) -> int:
    return response.usage.output_tokens if response.usage else 0


def explain_resume(error: BackendError) -> BackendError:
    return BackendError(
        f"{error} The run's state is saved: call run_batched again with the same state_path to go on.",
        status_code=error.status_code,
    )
