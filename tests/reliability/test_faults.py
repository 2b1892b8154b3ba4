"""1000 conversations with 10% injected faults (500, 429 with Retry-After, hangs), through run_settled and
run_bounded, with the openai client's own retries on and off.

What must hold every time: exactly 1000 outcomes in input order; each fulfilled one holds its own prompt (with
its ``[id=i]``) and the right answer; each rejected one holds a typed error; no response, call or id appears
twice. With retries on, almost everything recovers: 500s and 429s are retried (after the 429's Retry-After); a hang
is cut by run_bounded's per-conversation timeout (a ConversationTimeout), or, in run_settled, which has no such
timeout, by the client's request timeout and then retried. With retries off, each injected fault costs exactly one
conversation, with an error of its own type.

The fault rate is per *request*; a conversation here makes two requests (a tool call, then the answer), so with
retries off ``1 - 0.9² = 19%`` of the conversations fail while 10% of the requests do.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agentlab import BackendError, ConversationTimeout, Fulfilled, Rejected, run_bounded, run_settled
from agentlab.offline import FaultPlan, LatencyModel, OfflineServer, ServerConfig, start
from agentlab.results import Batch, Outcome

from .conftest import agent_for, close, wait_for_stats

N = 1000
RATE = 0.1
TIME_SCALE = 0.02
RETRY_AFTER = 0.5  # seconds before the time scale: the 429s say "retry after 10 ms"
# With 1000 conversations at once in one process (the client and the thread server share the GIL), a request takes
# ~1.5 s at the median and up to ~3 s: a limit that cuts hangs may now and then cut a slow good request too. The
# server tells them apart: a hang is a fault it counts; a slow good request was answered. SLACK allows a few.
SETTLED_CLIENT_TIMEOUT = 3.0  # run_settled has no per-conversation timeout: the client's request timeout cuts hangs
BOUNDED_TIMEOUT = 3.0  # run_bounded's per-conversation timeout cuts hangs (the client's own timeout is 60 s)
SLACK = N // 100
TURNS = 2  # model requests in one conversation: a sum_numbers call, then the answer


@pytest.fixture
def faulty_server() -> Iterator[OfflineServer]:
    """A fresh server per test, so that its counters belong to this test alone."""
    faults = FaultPlan(rate=RATE, kinds=("500", "429", "hang"), seed=3, retry_after=RETRY_AFTER)
    config = ServerConfig(LatencyModel(time_scale=TIME_SCALE, seed=3), faults)
    with start(config) as server:
        yield server


def prompt(i: int) -> str:
    return f"What is {i} + 7? [id={i}]"


@dataclass
class Tally:
    kinds: Counter[str]
    fulfilled: int
    timeouts: int
    slowest: float  # the slowest successful model call (the client's retries included)


def kind_of(error: BaseException) -> str:
    if isinstance(error, BackendError):
        return f"BackendError({error.status_code or 'timeout'})"
    return type(error).__name__


def check_outcomes(outcomes: Batch[Outcome]) -> Tally:
    """Exactly N outcomes in input order, right answers, typed errors, and nothing seen twice."""
    assert len(outcomes) == N
    assert [c.index for c in outcomes.report.conversations] == list(range(N)), "a conversation was not recorded"
    kinds: Counter[str] = Counter()
    item_ids: list[str] = []
    call_ids: list[str] = []
    for i, outcome in enumerate(outcomes):
        assert outcome.status == outcomes.report.conversations[i].status
        if isinstance(outcome, Fulfilled):
            result = outcome.value
            users = [m for m in result.messages if m.get("role") == "user"]
            assert [m["content"] for m in users] == [prompt(i)], f"conversation {i} holds another's prompt"
            assert result.output_text == f"{i} + 7 = {i + 7}.", f"conversation {i}: {result.output_text!r}"
            kinds_in_order = [m.get("type", "message") for m in result.messages]
            assert kinds_in_order == ["message", "reasoning", "function_call", "function_call_output",
                                      "reasoning", "message"], f"conversation {i}: {kinds_in_order}"  # fmt: skip
            item_ids += [m["id"] for m in result.messages if "id" in m]
            call_ids += [m["call_id"] for m in result.messages if m.get("type") == "function_call"]
            assert result.turns == TURNS
        else:
            assert isinstance(outcome, Rejected)
            error = outcome.reason
            assert isinstance(error, (BackendError, ConversationTimeout)), f"untyped error: {error!r}"
            if isinstance(error, BackendError):
                assert error.status_code in (429, 500) or (
                    error.status_code is None and "did not answer in time" in str(error)
                ), repr(error)
            else:
                assert error.timeout == BOUNDED_TIMEOUT
        kinds[outcome.status if isinstance(outcome, Fulfilled) else kind_of(outcome.reason)] += 1
    # Output items carry the id of the response that made them: one id twice = one response delivered twice.
    assert len(item_ids) == len(set(item_ids)), "a response was delivered twice"
    assert len(call_ids) == len(set(call_ids)), "a tool call was run twice"
    slowest = max(
        span.duration for o in outcomes if isinstance(o, Fulfilled) for span in o.value.spans if span.kind == "model"
    )
    return Tally(kinds, kinds["fulfilled"], kinds["ConversationTimeout"], slowest)


def run_batch(server: OfflineServer, runner: str, max_retries: int) -> tuple[Batch[Outcome], float]:
    async def main() -> Batch[Outcome]:
        prompts = [prompt(i) for i in range(N)]
        if runner == "run_settled":
            agent = agent_for(server, max_retries=max_retries, timeout=SETTLED_CLIENT_TIMEOUT)
            try:
                return await run_settled(agent, prompts)
            finally:
                await close(agent)
        agent = agent_for(server, max_retries=max_retries, timeout=60.0)
        try:
            return await run_bounded(agent, prompts, max_concurrency=250, timeout=BOUNDED_TIMEOUT)
        finally:
            await close(agent)

    started = time.perf_counter()
    outcomes = asyncio.run(main())
    return outcomes, time.perf_counter() - started


def fault_counts(server: OfflineServer) -> tuple[dict[str, int], int]:
    stats = wait_for_stats(server, lambda s: s["in_flight"] == 0)  # hung handlers end when their client leaves
    assert set(stats["statuses"]) <= {"200", "429", "500"}, f"the server refused a request: {stats['statuses']}"
    assert stats["in_flight"] == 0
    return {k: stats["faults"].get(k, 0) for k in ("500", "429", "hang")}, stats["requests"]


@pytest.mark.parametrize("runner", ["run_settled", "run_bounded"])
def test_with_client_retries_most_faults_recover(faulty_server: OfflineServer, runner: str) -> None:
    outcomes, wall = run_batch(faulty_server, runner, max_retries=2)
    tally = check_outcomes(outcomes)
    faults, requests = fault_counts(faulty_server)
    recovered_share = tally.fulfilled / (N - tally.timeouts)
    print(f"\n{runner}, retries on: {dict(tally.kinds)}; server: {requests} requests, faults {faults}; "
          f"fulfilled {tally.fulfilled / N:.1%} ({recovered_share:.1%} of those not cut by a timeout); "
          f"slowest model call {tally.slowest:.2f} s; wall {wall:.1f} s")  # fmt: skip
    assert sum(faults.values()) >= 0.07 * requests, "the faults were injected"
    assert all(faults.values()), faults
    # Every fault but a hang is retried away; a hang is cut and then either retried (run_settled, where the
    # client's timeout cuts it) or the conversation ends as a ConversationTimeout (run_bounded).
    assert recovered_share >= 0.97
    if runner == "run_settled":
        assert tally.fulfilled >= 0.97 * N
        assert tally.timeouts == 0
    else:
        assert 0 < tally.timeouts <= faults["hang"] + SLACK, "conversations timed out without a hang"
    assert wall < 30


@pytest.mark.parametrize("runner", ["run_settled", "run_bounded"])
def test_without_retries_every_fault_surfaces_as_a_typed_error(faulty_server: OfflineServer, runner: str) -> None:
    outcomes, wall = run_batch(faulty_server, runner, max_retries=0)
    tally = check_outcomes(outcomes)
    faults, requests = fault_counts(faulty_server)
    rejected = N - tally.fulfilled
    hung = "BackendError(timeout)" if runner == "run_settled" else "ConversationTimeout"
    slow = tally.kinds[hung] - faults["hang"]  # good requests cut by the timeout (see SLACK)
    print(f"\n{runner}, retries off: {dict(tally.kinds)}; rejected {rejected / N:.1%} of conversations; "
          f"server: {requests} requests, faults {faults} = {sum(faults.values()) / requests:.1%} of requests; "
          f"slow good requests cut: {slow}; slowest model call {tally.slowest:.2f} s; wall {wall:.1f} s")  # fmt: skip
    # 10% ± 3% of the requests failed, and each failure ended exactly one conversation, with its own type:
    assert abs(sum(faults.values()) / requests - RATE) <= 0.03
    assert abs(rejected / N - (1 - (1 - RATE) ** TURNS)) <= 0.03
    assert set(tally.kinds) <= {"fulfilled", "BackendError(500)", "BackendError(429)", hung}, tally.kinds
    assert tally.kinds["BackendError(500)"] == faults["500"]
    assert tally.kinds["BackendError(429)"] == faults["429"]
    assert 0 <= slow <= SLACK
    # A fulfilled conversation sent 2 requests, a rejected one 1 or 2 (it failed on its first or second turn).
    assert TURNS * tally.fulfilled + rejected <= requests <= TURNS * N, "a request was sent twice"
    assert wall < 30
