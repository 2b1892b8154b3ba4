"""``run_batched``: whole tool-calling conversations through the Batch API, one round per turn, resumable.

Round k sends the next model call of every conversation still open as **one batch**. When the batch is done,
each conversation reads its answer: a conversation that answered drops out; one that asked for tools runs them
here, through the agent's own tool step (``Agent.run_tools``, as ``tool_concurrency`` says; all conversations at
once), and goes into round k+1. A conversation past ``max_turns``, or whose request failed, is ``Rejected`` with
the reason; the others go on.

After every step the state is saved to ``state_path`` (see ``state.py``), so calling ``run_batched`` again with
the same ``state_path`` goes on where it stopped, and never sends a conversation's turn twice: a batch that
was created is found again by its input file, never created a second time. A round whose batch or file the
server no longer knows (a 404: the server restarted, and its answers are lost) is sent again, once, and the
report's ``notes`` say so; the turns that already got their answer are in the state and are never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import openai
from openai import AsyncOpenAI
from openai.types import Batch as ApiBatch
from openai.types.responses import Response, ResponseFunctionToolCall

from agentlab.agent import Agent, Prompt, check_prompts, describe_turn
from agentlab.batch.jsonl import ENDPOINT, custom_id, parse_results, request_line, usage_of
from agentlab.batch.report import BatchedReport, Price, RoundTiming, cost_of
from agentlab.batch.state import Conversation, Round, RunState, load_state, locked, save_state
from agentlab.client import default_client
from agentlab.errors import BackendError, ConfigurationError, MaxTurnsExceeded, translate_error
from agentlab.records import (
    AgentEvent,
    Batch,
    ConversationTiming,
    Fulfilled,
    Outcome,
    Progress,
    ProgressOption,
    Rejected,
    RunResult,
    Span,
    Usage,
)
from agentlab.views.live import Quiet, make_progress

__all__ = ["SimulatedCrash", "crash_at_round", "run_batched"]

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
    progress: ProgressOption = False,
) -> Batch[Outcome]:
    """Run every conversation through the Batch API, turn by turn; return their outcomes in input order.

    ``poll_interval`` is the longest wait between two looks at a batch (the waits start short and grow to
    it): seconds offline, a minute or more against the real API. ``prices`` maps a model to its ``Price`` for
    the report's cost (``report.cost``), live against batched. ``progress`` is a view, as for the other runners
    (``True``: a bar, with each round's batch status and request counts; ``"lanes"``, ``"table"``, …).
    """
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be a number of seconds greater than 0, got {poll_interval!r}")
    checked = check_prompts(prompts)
    path = Path(state_path) if state_path is not None else None
    if path is not None and not path.parent.is_dir():
        raise ConfigurationError(
            f"state_path={str(path)!r}: its folder {str(path.parent)!r} does not exist; make it first"
        )
    with locked(path) if path else contextlib.nullcontext():
        state = (load_state(path, agent, checked) if path else None) or RunState.start(agent, checked)

        def save() -> None:
            if path is not None:
                save_state(path, state)

        save()
        view = make_progress(progress) or Quiet()
        view.start_batch(len(state.conversations), "run_batched")
        try:
            for index, conv in enumerate(state.conversations):
                view.conversation_started(index)
                if conv.status != "open":  # a resumed run: this one ended before
                    view.conversation_finished(index, outcome_of(agent, conv, state.started))
            client = agent.client or default_client()
            while state.open():
                await run_round(agent, client, state, save, poll_interval, view)
        finally:
            view.end_batch()
    return build_batch(agent, state, prices)


async def run_round(
    agent: Agent,
    client: AsyncOpenAI,
    state: RunState,
    save: Callable[[], None],
    poll_interval: float,
    view: Progress,
) -> None:
    """One round, read top to bottom. Each step is saved before the next one starts."""
    try:
        # 1. Upload the next turn of every open conversation as one JSONL file.
        if state.pending is None:
            state.pending = await upload_round(agent, client, state, view)
            save()
        pending = state.pending
        try:
            # 2. Create the batch, or find the one that a run that died had already created from this file.
            if pending.batch_id is None:
                pending.batch_id = await create_or_adopt(client, state, pending)
                save()
            # 3. Wait until the batch is done, then read its output and error files.
            batch = await wait_for(client, pending, poll_interval, view)
            results = {**await read_file(client, batch.error_file_id), **await read_file(client, batch.output_file_id)}
        except openai.NotFoundError as exc:
            if pending.resent:  # lost twice: not a restart; this server keeps no files or batches
                raise
            await resend_lost_round(agent, client, state, view, exc)
            save()
            return
    except openai.APIError as exc:
        raise explain_resume(translate_error(exc, client)) from exc
    # 4. Each conversation reads its answer; those that asked for tools run them (the agent's tool step).
    await apply_results(agent, state, pending, batch, results, view)
    counts = batch.request_counts
    done = RoundTiming(
        pending.number,
        batch.id,
        len(pending.custom_ids),
        pending.submitted,
        time.time(),
        batch.status,
        counts.completed if counts else 0,
        counts.failed if counts else 0,
    )
    state.rounds.append(done)
    state.pending, state.round = None, state.round + 1
    save()


async def resend_lost_round(
    agent: Agent, client: AsyncOpenAI, state: RunState, view: Progress, exc: openai.NotFoundError
) -> None:
    """The server no longer knows this round's file or batch (it restarted): its answers are lost, so the round
    goes again. The turns of earlier rounds got their answers, kept in the state: never resent."""
    pending = state.pending
    assert pending is not None
    lost = pending.batch_id or pending.input_file_id
    state.notes.append(
        f"round {pending.number}: the server no longer knew {lost} ({exc.status_code} Not Found; did it "
        f"restart?), so its {len(pending.custom_ids)} requests were sent again"
    )
    state.pending = dataclasses.replace(await upload_round(agent, client, state, view), resent=True)


async def upload_round(agent: Agent, client: AsyncOpenAI, state: RunState, view: Progress) -> Round:
    open_now = state.open()
    ids = {custom_id(i, state.conversations[i].turns + 1, state.run_id): i for i in open_now}
    lines = [request_line(agent, state.conversations[i].messages, line_id) for line_id, i in ids.items()]
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    uploaded = await client.files.create(file=(f"round-{state.round}.jsonl", data), purpose="batch")
    for i in open_now:
        turn = f"turn {state.conversations[i].turns + 1}"
        view.conversation_event(i, AgentEvent("model_start", agent.model, turn, time.perf_counter()))
    return Round(state.round, uploaded.id, ids, time.time())


async def create_or_adopt(client: AsyncOpenAI, state: RunState, pending: Round) -> str:
    """The batch of this round's file: found among the newest batches if it exists, else created now."""
    seen = 0
    async for batch in client.batches.list(limit=100):
        if batch.input_file_id == pending.input_file_id:
            return batch.id
        seen += 1
        if batch.created_at < pending.submitted - 60 or seen >= 1000:
            break
    # the provider's own list of batches can then say which run and round each one is (lesson 08 counts them)
    metadata = {
        "agentlab_run": state.fingerprint[:16],
        "agentlab_run_id": state.run_id,
        "agentlab_round": str(pending.number),
    }
    created = await client.batches.create(
        input_file_id=pending.input_file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
    )
    return created.id


async def wait_for(client: AsyncOpenAI, pending: Round, poll_interval: float, view: Progress) -> ApiBatch:
    """Look at the batch until it ends, waiting a little longer each time, up to ``poll_interval``."""
    assert pending.batch_id is not None
    wait = min(0.02, poll_interval)
    while True:
        batch = await client.batches.retrieve(pending.batch_id)
        counts = batch.request_counts
        finished, total = (counts.completed + counts.failed, counts.total) if counts else (0, len(pending.custom_ids))
        view.round_update(pending.number, batch.id, batch.status, finished, total)
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
    agent: Agent,
    state: RunState,
    pending: Round,
    batch: ApiBatch,
    results: dict[str, Response | BackendError],
    view: Progress,
) -> None:
    """Give each conversation of the round its answer, or the reason it has none; run the tools it asked for."""
    now = time.time()
    missing = BackendError(MISSING.get(batch.status) or failed_reason(batch))
    tool_steps = []
    for line_id, index in pending.custom_ids.items():
        conv, result = state.conversations[index], results.get(line_id, missing)
        if isinstance(result, BackendError):
            conv.end(now, error=str(result))
        else:
            calls = read_answer(agent, conv, result, pending.submitted, now)
            view.conversation_event(index, AgentEvent("model_end", agent.model, describe_turn(len(calls)), now))
            if not calls:
                conv.end(now, answer=result.output_text)
            elif conv.turns >= agent.max_turns:
                conv.max_turns_exceeded = True
                conv.end(now, error=f"the conversation did not finish within max_turns={agent.max_turns}")
            else:
                tool_steps.append(run_tools(agent, conv, calls, functools.partial(view.conversation_event, index)))
        if conv.status != "open":
            view.conversation_finished(index, outcome_of(agent, conv, state.started))
    await asyncio.gather(*tool_steps)


def read_answer(
    agent: Agent, conv: Conversation, response: Response, submitted: float, now: float
) -> list[ResponseFunctionToolCall]:
    """Add a model turn to the conversation: its span, its usage, its output items; return its tool calls."""
    usage = usage_of(response)
    conv.turns += 1
    conv.usage += usage
    conv.spans.append(Span("model", agent.model, submitted, now, None, usage.input_tokens, usage.output_tokens))
    conv.messages.extend(item.model_dump(by_alias=True, exclude_none=True) for item in response.output)
    return [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]


async def run_tools(
    agent: Agent, conv: Conversation, calls: list[ResponseFunctionToolCall], on_event: Callable[[AgentEvent], None]
) -> None:
    """The agent's own tool step for one conversation; its spans move to Unix time, as the state keeps them."""
    spans: list[Span] = []
    conv.messages.extend(await agent.run_tools(calls, spans, on_event))
    offset = time.perf_counter() - time.time()
    conv.spans.extend(span.shifted(offset) for span in spans)


def failed_reason(batch: ApiBatch) -> str:
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    listed = "; ".join(f"line {e.line}: {e.code}: {e.message}" for e in errors[:3]) or "no reason given"
    return f"the batch {batch.id} ended {batch.status}: {listed}"


def explain_resume(error: BackendError) -> BackendError:
    return BackendError(
        f"{error} The run's state is saved: call run_batched again with the same state_path to go on.",
        status_code=error.status_code,
    )


# -- From the state of a finished run to what every runner returns ----------------------------------------------


def build_batch(agent: Agent, state: RunState, prices: Mapping[str, Price] | None) -> Batch[Outcome]:
    """The outcomes in input order, and a ``BatchedReport`` with the rounds, the cost and what happened."""
    outcomes = [outcome_of(agent, conv, state.started) for conv in state.conversations]
    timings = tuple(timing_of(i, conv, state.started) for i, conv in enumerate(state.conversations))
    rounds = tuple(
        dataclasses.replace(r, submitted=r.submitted - state.started, ended=r.ended - state.started)
        for r in state.rounds
    )
    usage = sum((conv.usage for conv in state.conversations), Usage())
    report = BatchedReport(
        "run_batched",
        time.time() - state.started,
        timings,
        agent.name,
        state.started,
        rounds=rounds,
        cost=cost_of(usage, agent.model, prices),
        notes=tuple(state.notes),
    )
    return Batch(outcomes, report)


def outcome_of(agent: Agent, conv: Conversation, started: float) -> Outcome:
    """A conversation's outcome, its Unix times moved onto ``time.perf_counter()`` like the other runners'."""
    offset = time.perf_counter() - time.time()  # Unix time + offset = perf_counter time
    if conv.status == "answered":
        spans = tuple(span.shifted(-offset) for span in conv.spans)
        ended = (conv.ended or started) + offset
        result = RunResult(
            conv.output_text, conv.messages, spans, conv.usage, conv.turns, started + offset, ended, agent.name
        )
        return Fulfilled(result)
    if conv.max_turns_exceeded:
        return Rejected(MaxTurnsExceeded(agent.max_turns, conv.messages))
    return Rejected(BackendError(conv.error or "the conversation did not finish"))


def timing_of(index: int, conv: Conversation, started: float) -> ConversationTiming:
    status: Literal["fulfilled", "rejected"] = "fulfilled" if conv.status == "answered" else "rejected"
    spans = tuple(span.shifted(started) for span in conv.spans)
    end = (conv.ended or started) - started
    return ConversationTiming(index, 0.0, end, status, turns=conv.turns, spans=spans, error=conv.error)


# -- Making a run crash (lesson 08) ---------------------------------------------------------------


class SimulatedCrash(RuntimeError):
    """Raised by ``crash_at_round``: the run stops as if its kernel had died there."""


class CrashAtRound(Quiet):
    def __init__(self, round_number: int) -> None:
        self.round = round_number

    def round_update(self, round_number: int, batch_id: str, status: str, finished: int, total: int) -> None:
        if round_number >= self.round:
            raise SimulatedCrash(
                f"simulated crash in round {round_number}, while {batch_id} was {status}: "
                "run run_batched again with the same state_path to go on"
            )


def crash_at_round(round_number: int) -> Progress:
    """A view that stops the run the first time it sees this round's batch (``progress=``, for lesson 08).

    By then the round's file is uploaded and its batch created, and both are in the state file: the moment a
    crash is most likely to send a turn twice, if the state were not kept.
    """
    return CrashAtRound(round_number)
