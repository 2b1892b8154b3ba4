"""1000 conversations with about 10% of their requests failing on purpose (500, 429 with Retry-After, and
hangs), through run_settled and run_bounded, with the openai client's own retries on and off.

What must hold every time: exactly 1000 outcomes in input order; each fulfilled one holds its own prompt (with
its ``[id=i]``) and the right answer; each rejected one holds a typed error; no response, call or id appears
twice.

Where the faults come from:
- 500s and 429s are drawn at random by the server (``FaultPlan(rate=...)``, seeded), about 8% of the requests;
- hangs are forced on known conversations, one in 25, by the marker ``[fault=hangx1]``: the first attempt of each
  of their requests never gets an answer. Because the test knows exactly which conversations hang, it asserts
  exactly which ones time out, instead of guessing from counts.

With retries on, a 500 or 429 is retried (after the 429's Retry-After), and a hang is cut either by
run_bounded's per-conversation timeout (the conversation ends as a ConversationTimeout) or, in run_settled, which
has no such timeout, by the client's request timeout, and then retried. A request fails all of its 3 attempts with
probability 0.08³ (about one request in 2000), so a conversation or two may still end in a BackendError. With retries
off, each injected fault costs exactly one conversation, with an error of its own type.

A conversation here makes two requests (a tool call, then the answer), so with retries off
``1 - (1 - 0.08)^2`` of the conversations without a hang fail while 8% of the requests do.

The server runs in its own process (``python -m agentlab serve``), as in the benchmark: in a thread it would share
the GIL with 1000 client conversations, and a good request would take seconds. The time limits are generous all the
same, because a limit that cuts hangs must never cut a good request on a busy 2-core machine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agentlab import BackendError, ConversationTimeout, Fulfilled, Rejected, run_bounded, run_settled
from agentlab.offline import OfflineServer, start_process
from agentlab.records import Batch, Outcome

from .conftest import agent_for, close, wait_for_stats

N = 1000
RATE = 0.08  # 500s and 429s, drawn at random per request attempt
HANG_EVERY = 25  # conversations 0, 25, 50, … hang on the first attempt of each request
HUNG = frozenset(range(0, N, HANG_EVERY))
TIME_SCALE = 0.02
# The 429s say "Retry-After: 1 s" before the time scale, so 20 ms here (the retry-after-ms header).
# run_settled has no per-conversation timeout: the client's request timeout cuts hangs. In the burst of 1000 at once
# a good request was seen to take 3.7 s on the client's side (its CPU): 8 s leaves a margin of 2x.
SETTLED_CLIENT_TIMEOUT = 8.0
# run_bounded's per-conversation timeout cuts hangs (the client's own timeout is 60 s). A good conversation was
# seen to take over 6 s with the suite's other worker busy beside it (its slowest model call 4.9 s): 12 s is 2x that.
BOUNDED_TIMEOUT = 12.0
MAX_CONCURRENCY = 100
TURNS = 2  # model requests in one conversation: a sum_numbers call, then the answer


@pytest.fixture
def faulty_server() -> Iterator[OfflineServer]:
    """A fresh server per test, so that its counters belong to this test alone."""
    with start_process(time_scale=TIME_SCALE, seed=3, fault_rate=RATE, fault_kinds=("500", "429")) as server:
        yield server


def prompt(i: int) -> str:
    return f"What is {i} + 7? [id={i}]" + (" [fault=hangx1]" if i in HUNG else "")


@dataclass
class Tally:
    kinds: Counter[str]  # "fulfilled", or the kind of error: "BackendError(500)", "ConversationTimeout", …
    cut: set[int]  # the conversations that ended in a timeout of either kind
    slowest: float  # the slowest successful model call (the client's retries included)

    @property
    def fulfilled(self) -> int:
        return self.kinds["fulfilled"]


def kind_of(error: BaseException) -> str:
    if isinstance(error, BackendError):
        return f"BackendError({error.status_code or 'timeout'})"
    return type(error).__name__


def check_outcomes(outcomes: Batch[Outcome]) -> Tally:
    """Exactly N outcomes in input order, right answers, typed errors, and nothing seen twice."""
    assert len(outcomes) == N
    assert [c.index for c in outcomes.report.conversations] == list(range(N)), "a conversation was not recorded"
    kinds: Counter[str] = Counter()
    cut: set[int] = set()
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
            assert kinds_in_order == [
                "message",
                "reasoning",
                "function_call",
                "function_call_output",
                "reasoning",
                "message",
            ], f"conversation {i}: {kinds_in_order}"
            item_ids += [m["id"] for m in result.messages if "id" in m]
            call_ids += [m["call_id"] for m in result.messages if m.get("type") == "function_call"]
            assert result.turns == TURNS
            kinds["fulfilled"] += 1
            continue
        assert isinstance(outcome, Rejected)
        error = outcome.reason
        assert isinstance(error, (BackendError, ConversationTimeout)), f"conversation {i}: untyped error {error!r}"
        if isinstance(error, BackendError):
            assert error.status_code in (429, 500) or (
                error.status_code is None and "did not answer in time" in str(error)
            ), repr(error)
        else:
            assert error.timeout == BOUNDED_TIMEOUT
        if isinstance(error, ConversationTimeout) or error.status_code is None:
            cut.add(i)
        kinds[kind_of(error)] += 1
    # Output items carry the id of the response that made them: one id twice = one response delivered twice.
    assert len(item_ids) == len(set(item_ids)), "a response was delivered twice"
    assert len(call_ids) == len(set(call_ids)), "a tool call was run twice"
    slowest = max(  # of the conversations that did not hang on purpose
        span.duration
        for i, o in enumerate(outcomes)
        if isinstance(o, Fulfilled) and i not in HUNG
        for span in o.value.spans
        if span.kind == "model"
    )
    return Tally(kinds, cut, slowest)


async def run_batch(server: OfflineServer, runner: str, max_retries: int) -> tuple[Batch[Outcome], float]:
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
            return await run_bounded(agent, prompts, max_concurrency=MAX_CONCURRENCY, timeout=BOUNDED_TIMEOUT)
        finally:
            await close(agent)

    started = time.perf_counter()
    outcomes = await main()
    return outcomes, time.perf_counter() - started


def fault_counts(server: OfflineServer) -> tuple[dict[str, int], int]:
    stats = wait_for_stats(server, lambda s: s["in_flight"] == 0)  # hung handlers end when their client leaves
    assert set(stats["statuses"]) <= {"200", "429", "500"}, f"the server refused a request: {stats['statuses']}"
    assert stats["in_flight"] == 0
    return {k: stats["faults"].get(k, 0) for k in ("500", "429", "hang")}, stats["requests"]


def report(runner: str, retries: str, tally: Tally, faults: dict[str, int], requests: int, wall: float) -> None:
    share = sum(faults.values()) / requests
    print(
        f"\n{runner}, retries {retries}: {dict(tally.kinds)}; server: {requests} requests, faults {faults} = "
        f"{share:.1%} of requests; cut by a timeout: {len(tally.cut)} ({len(HUNG)} hang on purpose); "
        f"slowest good model call {tally.slowest:.2f} s; wall {wall:.1f} s"
    )


@pytest.mark.parametrize("runner", ["run_settled", "run_bounded"])
async def test_with_client_retries_most_faults_recover(faulty_server: OfflineServer, runner: str) -> None:
    outcomes, wall = await run_batch(faulty_server, runner, max_retries=2)
    tally = check_outcomes(outcomes)
    faults, requests = fault_counts(faulty_server)
    report(runner, "on", tally, faults, requests, wall)
    assert 0.07 <= sum(faults.values()) / requests <= 0.13, "about 10% of the requests failed on purpose"
    assert all(faults.values()), faults
    # A request whose 3 attempts all failed: about requests × 0.08³ ≈ 1 is expected, more than 5 is not.
    exhausted = tally.kinds["BackendError(500)"] + tally.kinds["BackendError(429)"]
    assert exhausted <= 5, tally.kinds
    if runner == "run_settled":
        # The client's timeout cut each hang, and its retry got the answer: no conversation was lost to a hang.
        assert tally.cut == set()
        assert tally.fulfilled == N - exhausted, tally.kinds
        assert faults["hang"] == TURNS * len(HUNG)  # each request of a hung conversation hung once
    else:
        # run_bounded's timeout cut each hung conversation, and only those; the other faults were retried away.
        assert tally.cut == HUNG
        assert tally.fulfilled == N - len(HUNG) - exhausted, tally.kinds
        assert faults["hang"] == len(HUNG)
    assert wall < 60


@pytest.mark.parametrize("runner", ["run_settled", "run_bounded"])
async def test_without_retries_every_fault_surfaces_as_a_typed_error(faulty_server: OfflineServer, runner: str) -> None:
    outcomes, wall = await run_batch(faulty_server, runner, max_retries=0)
    tally = check_outcomes(outcomes)
    faults, requests = fault_counts(faulty_server)
    report(runner, "off", tally, faults, requests, wall)
    # Each hung conversation was cut (by the client's timeout, or by run_bounded's), and no other was:
    hung = "BackendError(timeout)" if runner == "run_settled" else "ConversationTimeout"
    assert tally.cut == HUNG
    assert tally.kinds[hung] == faults["hang"] == len(HUNG)
    # Each 500 and 429 ended exactly one conversation, with its own type:
    assert set(tally.kinds) <= {"fulfilled", "BackendError(500)", "BackendError(429)", hung}, tally.kinds
    assert tally.kinds["BackendError(500)"] == faults["500"]
    assert tally.kinds["BackendError(429)"] == faults["429"]
    # ... and 8% ± 3% of the requests of the other conversations failed, so 1 - 0.92² of them:
    random_faults = (faults["500"] + faults["429"]) / (requests - faults["hang"])
    assert abs(random_faults - RATE) <= 0.03
    others_failed = (N - tally.fulfilled - len(HUNG)) / (N - len(HUNG))
    assert abs(others_failed - (1 - (1 - RATE) ** TURNS)) <= 0.03
    # A fulfilled conversation sent 2 requests, a rejected one 1 or 2 (it failed on its first or second turn).
    rejected = N - tally.fulfilled
    assert TURNS * tally.fulfilled + rejected <= requests <= TURNS * N, "a request was sent twice"
    assert wall < 60
