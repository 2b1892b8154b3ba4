"""The Agent: frozen configuration plus one visible agent loop on the Responses API.

An ``Agent`` holds only settings (name, instructions, tools, model, …) and never changes after it is made.
Everything about one conversation (its messages, spans, turns) lives in the locals of ``Agent.run`` and in
the ``RunResult`` it returns. That is why one Agent can run a thousand conversations at the same time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseFunctionToolCall

from agentlab.client import DEFAULT_MODEL, default_client
from agentlab.errors import ConfigurationError, MaxTurnsExceeded, PromptError
from agentlab.model import RateBudget, call_model
from agentlab.records import AgentEvent, RunResult, Span, Usage
from agentlab.tools import Tool, tool

__all__ = ["Agent", "InputItem", "Prompt", "EventHandler", "ReasoningEffort"]

InputItem: TypeAlias = dict[str, Any]
Prompt: TypeAlias = str | list[InputItem]
EventHandler: TypeAlias = Callable[[AgentEvent], None]
ReasoningEffort: TypeAlias = Literal["minimal", "low", "medium", "high"]


@dataclass(frozen=True)
class Agent:
    """Settings for conversations with a model. Frozen: runs never change it."""

    name: str
    instructions: str
    tools: tuple[Tool, ...] = ()
    model: str = DEFAULT_MODEL
    max_turns: int = 10
    parallel_tool_calls: bool | None = None  # what the model may ask for; None: not sent (the API's default)
    tool_concurrency: int | None = 1  # how one turn's calls run: 1 a for loop, None all at once, k at most k
    reasoning_effort: ReasoningEffort | None = None  # None: the server's default; else sent as reasoning.effort
    stream: bool = False  # True: each answer comes as Server-Sent Events, its text reaching on_event as it comes
    client: AsyncOpenAI | None = field(default=None, repr=False, compare=False)
    # Worked out once from `tools`, in __post_init__, so that no turn rebuilds them.
    tool_schemas: tuple[dict[str, Any], ...] = field(init=False, repr=False, compare=False)
    tools_by_name: dict[str, Tool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_turns, bool) or not isinstance(self.max_turns, int) or self.max_turns < 1:
            raise ConfigurationError(f"max_turns must be a whole number of at least 1, got {self.max_turns!r}")
        if self.parallel_tool_calls is not None and not isinstance(self.parallel_tool_calls, bool):
            raise ConfigurationError(
                f"parallel_tool_calls must be True, False or None (not sent), got {self.parallel_tool_calls!r}"
            )
        concurrency = self.tool_concurrency
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ConfigurationError(
                f"tool_concurrency must be a whole number of at least 1 (1: one call after another), "
                f"or None (all of a turn's calls at once), got {concurrency!r}"
            )
        if self.reasoning_effort is not None and self.reasoning_effort not in get_args(ReasoningEffort):
            raise ConfigurationError(
                f"reasoning_effort={self.reasoning_effort!r} is not known: use None (the server's default) "
                f"or one of {list(get_args(ReasoningEffort))}"
            )
        if isinstance(self.tools, Tool) or callable(self.tools) or isinstance(self.tools, (str, bytes)):
            name = getattr(self.tools, "name", None) or getattr(self.tools, "__name__", "...")
            raise ConfigurationError(f"tools must be a list of tools, got a single one: write tools=[{name}]")
        tools = tuple(tool(t) for t in self.tools)  # plain functions are turned into Tools here
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"two tools share a name in {names}: tool names must be unique")
        object.__setattr__(self, "tools", tools)
        object.__setattr__(self, "tool_schemas", tuple(t.schema() for t in tools))
        object.__setattr__(self, "tools_by_name", {t.name: t for t in tools})

    async def run(
        self, prompt: Prompt, *, on_event: EventHandler | None = None, budget: RateBudget | None = None
    ) -> RunResult:
        """Hold one conversation: call the model, run the tools it asks for, repeat until it answers.

        With a ``budget`` (``agentlab.Budget``), every model call waits for its share of the rate limit.
        """
        messages = start_transcript(prompt)  # a fresh local list: this run's state lives here
        client = self.client or default_client()
        spans: list[Span] = []
        usage = Usage()
        started_at = time.perf_counter()

        for turn in range(1, self.max_turns + 1):
            # 1. Ask the model, sending the whole conversation so far (the call adds its spans to `spans`).
            if on_event:
                on_event(AgentEvent("model_start", self.model, f"turn {turn}", time.perf_counter()))
            response = await self.create_response(client, messages, on_event, budget, spans)
            if response.usage:
                usage += Usage(response.usage.input_tokens, response.usage.output_tokens)

            # 2. Keep every output item (reasoning included): the next request sends them back.
            messages.extend(item.model_dump(by_alias=True, exclude_none=True) for item in response.output)
            calls = [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]
            if on_event:
                on_event(AgentEvent("model_end", self.model, describe_turn(len(calls)), time.perf_counter()))

            # 3. No tool calls: the model has answered, and the conversation is over.
            if not calls:
                return RunResult(
                    output_text=response.output_text,
                    messages=messages,
                    spans=tuple(spans),
                    usage=usage,
                    turns=turn,
                    started_at=started_at,
                    ended_at=time.perf_counter(),
                    agent_name=self.name,
                )

            # 4. Run each tool call and send back its output under the same call_id. By default
            #    (tool_concurrency=1) one after another, as in the source lesson: a plain for loop.
            if self.tool_concurrency == 1:
                for call in calls:
                    messages.append(await self.run_call(call, spans, on_event))
            else:  # None: all of this turn's calls at once; k: at most k at a time
                messages.extend(await self.run_tools(calls, spans, on_event))

        # 5. The model never stopped asking for tools.
        raise MaxTurnsExceeded(self.max_turns, messages)

    async def create_response(
        self,
        client: AsyncOpenAI,
        messages: list[InputItem],
        on_event: EventHandler | None = None,
        budget: RateBudget | None = None,
        spans: list[Span] | None = None,
    ) -> Response:
        """Step 1, one model call (``agentlab.model``: plain or streamed, through the budget if there is one).

        With ``spans``, its ``Span("model", …)`` goes there, after any ``Span("wait", "budget" | "retry", …)``.
        """
        # `input` and `tools` are already plain JSON in the wire shape, so they go in `extra_body`: passed as
        # typed parameters, the client would walk every item of the growing transcript against its TypedDicts
        # on every turn, which cost ~75% of our CPU per call (see the README).
        body: dict[str, Any] = {"input": messages, "tools": self.tool_schemas}
        if self.reasoning_effort is not None:
            body["reasoning"] = {"effort": self.reasoning_effort}
        request: dict[str, Any] = {"model": self.model, "instructions": self.instructions, "extra_body": body}
        if self.parallel_tool_calls is not None:  # None: not sent, the API's default (several calls a turn)
            request["parallel_tool_calls"] = self.parallel_tool_calls
        return await call_model(client, request, stream=self.stream, on_event=on_event, budget=budget, spans=spans)

    async def run_tools(
        self, calls: Sequence[ResponseFunctionToolCall], spans: list[Span], on_event: EventHandler | None = None
    ) -> list[InputItem]:
        """Step 4 for one turn: run its calls as ``tool_concurrency`` says, return their outputs in call order.

        1: one after another (the loop writes this case out, so that lesson 01 shows it); None: all at once;
        k: at most k at a time. Each call adds its ``Span("tool", ..., call_id=...)`` to ``spans``.
        ``run_batched`` runs the tool step of its conversations through here too.
        """
        if self.tool_concurrency == 1:
            return [await self.run_call(call, spans, on_event) for call in calls]
        limit = asyncio.Semaphore(self.tool_concurrency or max(1, len(calls)))

        async def run_when_allowed(call: ResponseFunctionToolCall) -> InputItem:
            async with limit:
                return await self.run_call(call, spans, on_event)

        return list(await asyncio.gather(*(run_when_allowed(call) for call in calls)))

    async def run_call(
        self, call: ResponseFunctionToolCall, spans: list[Span], on_event: EventHandler | None
    ) -> InputItem:
        """Run one function call, time it as a span, and return its ``function_call_output`` item."""
        t0 = time.perf_counter()
        if on_event:
            on_event(AgentEvent("tool_start", call.name, describe_arguments(call.arguments), t0))
        output = await self.call_tool(call.name, call.arguments)
        spans.append(Span("tool", call.name, t0, time.perf_counter(), call_id=call.call_id))
        if on_event:
            on_event(AgentEvent("tool_end", call.name, output, time.perf_counter()))
        return {"type": "function_call_output", "call_id": call.call_id, "output": output}

    async def call_tool(self, name: str, arguments: str) -> str:
        """Run one tool call. The model's mistakes come back as ``"error: …"`` text, never as exceptions."""
        found = self.tools_by_name.get(name)
        if found is None:
            offered = ", ".join(self.tools_by_name) or "none"
            return f"error: there is no tool named {name!r}; the tools are: {offered}"
        return await found.call(arguments)


# -- Small helpers for the loop -------------------------------------------------------------------------------


def start_transcript(prompt: Prompt) -> list[InputItem]:
    """A new list holding the conversation's input: a user message for a string, or copies of the items."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and all(isinstance(item, dict) for item in prompt):
        return [dict(item) for item in prompt]
    raise PromptError(
        "a prompt must be a str or a list of input items (dicts such as "
        f"{{'role': 'user', 'content': '...'}}), got {type(prompt).__name__}"
    )


def check_prompts(prompts: Iterable[object]) -> list[Prompt]:
    """Check every prompt of a batch up front; a TypeError names the index of the first bad one."""
    if isinstance(prompts, (str, bytes, dict)):
        raise PromptError(f"prompts must be a list of prompts, got a single {type(prompts).__name__}: wrap it in [...]")
    checked: list[Prompt] = []
    for index, prompt in enumerate(prompts):
        try:
            start_transcript(prompt)  # type: ignore[arg-type]
        except PromptError as exc:
            raise PromptError(f"prompts[{index}]: {exc}") from None
        checked.append(prompt)  # type: ignore[arg-type]
    return checked


def describe_turn(n_calls: int) -> str:
    return "answer" if n_calls == 0 else f"{n_calls} tool call{'s' if n_calls > 1 else ''}"


def describe_arguments(arguments: str) -> str:
    """``'{"a":3,"b":4}'`` → ``"a=3, b=4"``, for logs; anything else is shown as it came.

    A log line must never change how a conversation ends, so nothing here may raise: a 5000-digit integer
    (ValueError), JSON nested too deeply (RecursionError) or any other surprise is shown as it came.
    """
    try:
        decoded = json.loads(arguments)
    except Exception:
        return arguments
    if isinstance(decoded, dict):
        return ", ".join(f"{key}={json.dumps(value)}" for key, value in decoded.items())
    return arguments
