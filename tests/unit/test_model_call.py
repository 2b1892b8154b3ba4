"""The one seam for a model call: plain or streamed, any budget wrapping either, and the spans it records."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response

from agentlab import Agent, AgentEvent, Budget, Fulfilled, Rejected, run_bounded
from agentlab.model import Send
from agentlab.offline import transport
from agentlab.tools.math import MATH_TOOLS

RPM, TPM = 300, 60_000  # per scaled minute of 3 s (AGENTLAB_TIME_SCALE=0.05): 100 requests a second


class RefuseOnce:
    """A budget of our own (the contract: ``async call(send, input_tokens)``): it waits 20 ms for its share,
    then treats the first attempt as refused and sends again."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    async def call(self, send: Send, input_tokens: int) -> Response:
        self.tokens.append(input_tokens)
        await asyncio.sleep(0.02)  # the budget's wait: what the "budget" span must show
        await send(0)
        response, headers = await send(1)
        assert "content-type" in headers
        return response


async def test_any_budget_wraps_the_call_and_its_waits_and_retries_become_spans() -> None:
    budget = RefuseOnce()
    agent = Agent("calc", "Use the tools.", tools=MATH_TOOLS)
    result = await agent.run("What is 2 + 3?", budget=budget)
    assert "5" in result.output_text and len(budget.tokens) == result.turns == 2
    assert budget.tokens[1] > budget.tokens[0] > 0, "the second turn sends a longer transcript"
    first_turn = result.spans[:3]
    assert [(span.kind, span.name) for span in first_turn] == [
        ("wait", "budget"),
        ("wait", "retry"),
        ("model", agent.model),
    ]
    assert first_turn[0].end == first_turn[1].start and first_turn[1].end == first_turn[2].start  # back to back
    assert first_turn[0].duration >= 0.02 and first_turn[2].input_tokens == result.spans[2].input_tokens
    assert [span.kind for span in result.spans] == ["wait", "wait", "model", "tool", "wait", "wait", "model"]


async def test_a_streaming_agent_under_a_budget_gets_no_429_and_its_text_on_the_way() -> None:
    http = httpx.AsyncClient(transport=transport(rpm=RPM, tpm=TPM))
    client = AsyncOpenAI(base_url="http://offline.invalid/v1", api_key="offline", http_client=http)
    agent = Agent("calc", "Use the tools.", tools=MATH_TOOLS, client=client, stream=True)
    budget = Budget(requests_per_minute=RPM, tokens_per_minute=TPM)
    deltas: dict[int, list[str]] = {}

    def collect(index: int, event: AgentEvent) -> None:
        if event.kind == "text_delta":
            deltas.setdefault(index, []).append(event.detail)

    outcomes = await run_bounded(agent, [f"What is {i} + 1?" for i in range(20)], budget=budget, on_event=collect)
    assert budget.stats.rate_limited == 0 and budget.stats.calls == 40
    for index, outcome in enumerate(outcomes):
        assert isinstance(outcome, Fulfilled) and str(index + 1) in outcome.value.output_text
        assert "".join(deltas[index]) == outcome.value.output_text
    waited = [s for c in outcomes.report.conversations for s in c.spans if (s.kind, s.name) == ("wait", "budget")]
    assert waited, "20 conversations at once under this limit: some waited for the budget, and their spans say so"
    await http.aclose()


class AbsurdHeaders(httpx.AsyncBaseTransport):
    """The in-process offline API, with ``headers`` written over the x-ratelimit-* headers of every answer."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.inner, self.headers = transport(rpm=RPM, tpm=TPM), headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        response.headers.update(self.headers)
        return response


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-limit-tokens": "9" * 400, "x-ratelimit-remaining-tokens": "9" * 400},
        {"x-ratelimit-reset-tokens": "9" * 400 + "h", "x-ratelimit-reset-requests": "9" * 400 + "h"},
        {"x-ratelimit-remaining-tokens": "-1000000", "x-ratelimit-remaining-requests": "-1000000"},
    ],
    ids=["limit of 400 digits", "reset of nines hours", "remaining minus a million"],
)
async def test_absurd_rate_limit_headers_never_stop_a_batch(headers: dict[str, str]) -> None:
    http = httpx.AsyncClient(transport=AbsurdHeaders(headers))
    client = AsyncOpenAI(base_url="http://offline.invalid/v1", api_key="offline", http_client=http)
    agent = Agent("calc", "Use the tools.", tools=MATH_TOOLS, client=client)
    budget = Budget(requests_per_minute=RPM, tokens_per_minute=TPM)
    prompts = [f"What is {i} + 1?" for i in range(10)]
    outcomes = await asyncio.wait_for(run_bounded(agent, prompts, budget=budget), timeout=30)  # none left asleep
    assert [type(outcome) for outcome in outcomes] == [Fulfilled] * 10
    assert budget.stats.calls == 20 and budget.stats.rate_limited == 0
    await http.aclose()


@pytest.mark.parametrize(
    ("retries", "said"),
    [(0, "(the budget did not retry it)"), (2, "after the budget's 2 retries")],
)
async def test_a_failure_under_a_budget_counts_the_budgets_retries_not_the_clients(retries: int, said: str) -> None:
    """Under a budget the client does not retry (max_retries=0 on the wire); the message says whose retries ran."""
    http = httpx.AsyncClient(transport=transport())
    client = AsyncOpenAI(base_url="http://offline.invalid/v1", api_key="offline", http_client=http, max_retries=5)
    agent = Agent("calc", "Use the tools.", tools=MATH_TOOLS, client=client)
    budget = Budget(requests_per_minute=RPM, tokens_per_minute=TPM, max_retries=retries, start_full=True)
    with pytest.MonkeyPatch.context() as patch:  # no backoff between retries: the message is what is tested
        patch.setattr("agentlab.budget.retry_wait", lambda *_: 0.0)
        (outcome,) = await run_bounded(agent, ["What is 2 + 3? [fault=500]"], budget=budget)
    await client.close()
    assert isinstance(outcome, Rejected)
    message = str(outcome.reason)
    assert said in message and "client's" not in message, message
    assert budget.stats.retries == retries
