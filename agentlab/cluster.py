"""Past one machine, live: conversations spread over Dask workers, every model call paced by ONE shared budget.

When tools do real work, one process is not enough, and every worker process draws on the same rate limit. A
budget per process spends the whole limit once per process (LiteLLM's router, Celery's per-worker
``rate_limit``, Ray Data's per-actor ``qps``). Here the budget lives once, on the Dask **scheduler**::

    client = Client(LocalCluster(n_workers=4, processes=True))   # or Client("tcp://scheduler:8786")
    budget = SharedBudget(client, requests_per_minute=500, tokens_per_minute=200_000)
    batch = await run_distributed(agent, prompts, client, budget=budget)

- **The shared budget** is a real ``agentlab.budget.Budget`` held by a scheduler plugin, so it means what Budget
  means: reserve, settle against usage, learn from the ``x-ratelimit-*`` headers, pause after a 429. On a worker
  the handle is a ``LinkedBudget``: Budget's own ``call`` loop, whose ``reserve`` and ``settle`` go to the
  scheduler over one connection per worker; what queued up while the last write went out goes in the next one,
  so a worker's conversations share one stream instead of a round trip each. It lives on the scheduler, not on
  a worker (an actor), because any worker may die; Dask's ``Semaphore`` counts no tokens (and its leases expire
  under load, dask/distributed issue 4057).
- **Leases.** A dead worker's reservations stay counted as in flight for ``LEASE_SECONDS`` (its requests may
  still reach the server), then come back as a cancelled call's do (its input counted as spent).
- **The conversations** run many at once on each worker's event loop, with one ``AsyncOpenAI`` per worker made
  from what the caller's client says (base URL, timeout, retries, headers), never the key: each worker reads
  ``OPENAI_API_KEY`` from its own environment. Not a Dask task each: a task holds one of the worker's threads.
  The caller connects to each worker (a ``WorkerPlugin`` adds the handler), hands it at most ``max_per_worker``
  conversations at a time, and gets each outcome as it finishes.
- **Faults.** A worker that dies takes its running conversations with it: they are ``Rejected`` with a
  ``WorkerLost`` that says so, not run again (their answered turns would be sent again, and a tool with side
  effects would run twice); the others go to the live workers. A Dask client closed mid-batch gives
  ``Rejected(WorkerLost)`` for what had not finished, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import pickle
import statistics
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import dask.distributed
import httpx2
import openai
from distributed.comm.core import Comm, connect
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin
from distributed.protocol.pickle import dumps
from distributed.protocol.serialize import to_serialize
from openai import AsyncOpenAI, DefaultAioHttpClient

from agentlab import settings
from agentlab.agent import Agent, Prompt, check_prompts
from agentlab.budget import Budget, Reservation, check_positive, retry_after
from agentlab.client import IN_PROCESS_URL, OFFLINE_API_KEY, default_client
from agentlab.errors import BackendError, ConfigurationError, ConversationTimeout
from agentlab.model import RateBudget
from agentlab.records import Batch, Fulfilled, Outcome, Rejected, RunResult
from agentlab.runners import BatchClock

__all__ = ["LEASE_SECONDS", "SharedBudget", "WorkerLost", "run_distributed"]

LEASE_SECONDS = 5.0  # a dead worker's reservations come back this long after its connection closed
PER_WORKER = 64  # conversations handed to one worker at a time (the others wait, and go to whoever is free)
BUDGET_PLUGIN, WORKER_PLUGIN = "agentlab-shared-budget", "agentlab-conversations"
CLOSED = (OSError, EOFError)  # Dask's CommClosedError is an OSError


class WorkerLost(BackendError):
    """A conversation's Dask worker died (or the client closed) before the conversation finished."""


# -- The caller ---------------------------------------------------------------------------------------------


async def run_distributed(
    agent: Agent,
    prompts: Iterable[Prompt],
    client: dask.distributed.Client,
    *,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    budget: RateBudget | None = None,
    timeout: float | None = None,
    max_per_worker: int = PER_WORKER,
) -> Batch[Outcome]:
    """Run the conversations on the Dask workers of ``client``; N outcomes in prompt order, like ``run_bounded``.

    ``requests_per_minute=R, tokens_per_minute=T`` is shorthand for ``budget=SharedBudget(client, ...)``, a
    budget of this batch alone. Pass one ``SharedBudget`` to several batches to share it. Any other budget (a
    plain ``Budget``) is copied to each worker: each then spends the whole limit on its own (lesson 10).
    """
    check_client(client)
    checked = check_prompts(prompts)
    budget = budget_for(client, budget, requests_per_minute, tokens_per_minute)
    if isinstance(max_per_worker, bool) or not isinstance(max_per_worker, int) or max_per_worker < 1:
        raise ConfigurationError(f"max_per_worker must be a whole number of at least 1, got {max_per_worker!r}")
    check_positive("timeout", timeout)
    spec = ClientSpec.of(agent.client or default_client())
    clock = BatchClock("run_distributed", agent, checked, timeout, False, False, None)
    outcomes: list[Outcome | None] = [None] * len(checked)
    shipped = Shipment(dataclasses.replace(agent, client=None), spec, budget, timeout)
    work = Spread(client, shipped, checked, outcomes, clock).run(max_per_worker)
    with clock:
        if client.asynchronous:
            running: asyncio.Future[None] = asyncio.ensure_future(work)
        else:  # every Dask call runs on the client's own loop, in its thread; we wait here without blocking
            loop = client.loop.asyncio_loop  # type: ignore[union-attr]
            running = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))
        await until_done_or_closed(running, client)
    for index in [i for i, outcome in enumerate(outcomes) if outcome is None]:
        outcomes[index] = lost = Rejected(
            WorkerLost(f"the Dask client was closed before this conversation ended. {NOT_AGAIN}")
        )
        clock.record(index, lost, clock.origin)
    return Batch([o for o in outcomes if o is not None], clock.report())


def check_client(client: object) -> None:
    if not isinstance(client, dask.distributed.Client):
        raise ConfigurationError(
            f"client must be a dask.distributed.Client (Client(LocalCluster()) or Client('tcp://host:8786')), "
            f"got {type(client).__name__}"
        )
    if closing(client):
        raise ConfigurationError("client is closed: make a new dask.distributed.Client")


def budget_for(
    client: dask.distributed.Client, budget: RateBudget | None, rpm: float | None, tpm: float | None
) -> RateBudget | None:
    if budget is not None and (rpm is not None or tpm is not None):
        raise ConfigurationError("pass either budget= or requests_per_minute=/tokens_per_minute=, not both")
    if budget is not None and not callable(getattr(budget, "call", None)):
        raise ConfigurationError(f"budget must be a SharedBudget or a Budget, got {type(budget).__name__}")
    if rpm is not None or tpm is not None:
        return SharedBudget(client, requests_per_minute=rpm, tokens_per_minute=tpm)
    return budget


async def until_done_or_closed(running: asyncio.Future[None], client: dask.distributed.Client) -> None:
    """Wait for the batch; if the Dask client closes meanwhile, stop waiting (its loop may be gone with it)."""
    try:
        while not running.done():
            await asyncio.wait([running], timeout=0.1)
            if closing(client) and not running.done():
                running.cancel()
                await asyncio.wait([running], timeout=1.0)  # a loop that closed with the client never answers
                return
        running.result()
    except BaseException:
        running.cancel()
        raise


@dataclasses.dataclass(frozen=True)
class Shipment:
    """What a worker needs for this batch: the Agent (its client left behind), the client's spec, the budget."""

    agent: Agent
    spec: ClientSpec
    budget: RateBudget | None
    timeout: float | None


@dataclasses.dataclass
class Spread:
    """One batch on the cluster, run on the Dask client's loop: one connection per worker, each kept busy."""

    client: dask.distributed.Client
    shipped: Shipment
    prompts: list[Prompt]
    outcomes: list[Outcome | None]
    clock: BatchClock

    async def run(self, per_worker: int) -> None:
        scheduler: Any = self.client.scheduler
        workers = list((await scheduler.identity())["workers"])
        if not workers:
            raise ConfigurationError("client: the Dask cluster has no workers; start some (LocalCluster(n_workers=4))")
        plugin = dumps(ConversationsPlugin())
        await scheduler.register_worker_plugin(plugin=plugin, name=WORKER_PLUGIN, idempotent=True)
        waiting, comms = deque(range(len(self.prompts))), list[Comm]()
        share = min(per_worker, math.ceil(len(self.prompts) / len(workers)))  # a small batch is spread over all
        try:
            await asyncio.gather(*(self.work(address, waiting, share, comms) for address in workers))
        finally:
            for comm in comms:
                comm.abort()  # the worker cancels whatever it still runs for us
        for index in waiting:  # every worker died before these were handed out
            self.finish(index, Rejected(WorkerLost("every Dask worker died; run it again")), self.clock.origin)

    async def work(self, address: str, waiting: deque[int], at_most: int, comms: list[Comm]) -> None:
        """Ship the Agent to one worker, then hand it conversations as others finish, until none are left."""
        in_flight: dict[int, float] = {}  # index → when it was handed out
        try:
            comm = await connect(address, **self.client.connection_args)
            comms.append(comm)
            await comm.write({"op": "agentlab_conversations", "reply": False, "shipped": to_serialize(self.shipped)})
            hello = await comm.read()
            if "error" in hello:
                raise hello["error"]
            offset = time.perf_counter() - float(hello["clock"])  # the worker's clock against ours
            while waiting or in_flight:
                handed = [waiting.popleft() for _ in range(min(len(waiting), at_most - len(in_flight)))]
                if handed:
                    in_flight.update(dict.fromkeys(handed, time.perf_counter()))
                    await comm.write({"jobs": [(i, self.prompts[i]) for i in handed]})
                if not in_flight:
                    return
                for index, result, error in (await comm.read())["done"]:
                    outcome = Fulfilled(shifted(result, offset)) if error is None else Rejected(error)
                    self.finish(index, outcome, in_flight.pop(index))
        except ConfigurationError:
            raise  # the worker cannot run this batch at all (no key in its environment): before any request
        except Exception:  # the connection closed (the worker died), or what it sent cannot be read
            why = "the Dask client was closed" if closing(self.client) else f"its Dask worker {address} died"
            for index, start in in_flight.items():
                self.finish(index, Rejected(WorkerLost(f"{why} while this conversation ran there. {NOT_AGAIN}")), start)

    def finish(self, index: int, outcome: Outcome, start: float) -> None:
        self.outcomes[index] = outcome
        self.clock.record(index, outcome, start)


NOT_AGAIN = (
    "It was not run again: turns it already had answers for would be sent again, and a tool with side effects "
    "would run twice. Run it again if that is safe."
)


def closing(client: dask.distributed.Client) -> bool:
    return client.status in ("closing", "closed")


def shifted(result: RunResult, offset: float) -> RunResult:
    """The worker's times moved onto the caller's clock."""
    spans = tuple(span.shifted(-offset) for span in result.spans)
    return dataclasses.replace(
        result, spans=spans, started_at=result.started_at + offset, ended_at=result.ended_at + offset
    )


# -- The worker ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClientSpec:
    """What a worker needs to make its own AsyncOpenAI: never the key (each worker reads OPENAI_API_KEY)."""

    base_url: str
    timeout: float | None  # seconds per attempt (an httpx Timeout's read timeout)
    max_retries: int
    headers: tuple[tuple[str, str], ...]
    needs_key: bool  # False for the offline server, which takes any key

    @classmethod
    def of(cls, client: AsyncOpenAI) -> ClientSpec:
        base_url = str(client.base_url)
        if base_url.rstrip("/") == IN_PROCESS_URL:
            raise ConfigurationError(
                "the agent's client answers inside this process (offline.transport()), which Dask workers cannot "
                "reach: give the Agent a client of a server they can reach, such as offline.start()'s base_url"
            )
        headers = tuple((k, str(v)) for k, v in client._custom_headers.items() if k.lower() != "authorization")
        timeout = client.timeout if isinstance(client.timeout, (int, float)) else getattr(client.timeout, "read", None)
        return cls(base_url, timeout, client.max_retries, headers, client.api_key != OFFLINE_API_KEY)

    def make(self) -> AsyncOpenAI:
        key = settings.api_key() or (None if self.needs_key else OFFLINE_API_KEY)
        if key is None:
            raise ConfigurationError("set OPENAI_API_KEY in the Dask workers' environment: the key never travels")
        return AsyncOpenAI(
            api_key=key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            default_headers=dict(self.headers),
            http_client=DefaultAioHttpClient(),
        )


class ConversationsPlugin(WorkerPlugin):
    """Adds the ``agentlab_conversations`` handler to each worker, and keeps its clients (one per spec)."""

    name = WORKER_PLUGIN
    idempotent = True

    def setup(self, worker: dask.distributed.Worker) -> None:
        self.worker, self.clients = worker, dict[ClientSpec, AsyncOpenAI]()
        worker.handlers["agentlab_conversations"] = self.serve

    async def teardown(self, worker: dask.distributed.Worker) -> None:
        for client in self.clients.values():
            await client.close()

    async def serve(self, comm: Comm, shipped: Shipment) -> None:
        """Run every conversation the caller hands over, at once, until the caller closes the connection."""
        try:
            client = self.clients.get(shipped.spec) or self.clients.setdefault(shipped.spec, shipped.spec.make())
            agent, budget = dataclasses.replace(shipped.agent, client=client), shipped.budget
            if isinstance(budget, SharedBudget):
                budget = budget.linked(self.worker.scheduler.address, self.worker.connection_args)
        except Exception as exc:  # the caller waits for our hello: say why there will be none
            await comm.write({"error": to_serialize(portable(exc))})
            return
        await comm.write({"clock": time.perf_counter()})
        outbox = Outbox(comm, "done")
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                for index, prompt in (await comm.read())["jobs"]:
                    task = asyncio.create_task(converse(agent, index, prompt, budget, shipped.timeout, outbox))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        except CLOSED:
            pass  # the caller is done (or gone): stop what still runs for it
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            outbox.close()


async def converse(
    agent: Agent, index: int, prompt: Prompt, budget: RateBudget | None, timeout: float | None, outbox: Outbox
) -> None:
    extra: dict[str, Any] = {"budget": budget} if budget is not None else {}
    try:
        async with asyncio.timeout(timeout):
            outbox.put((index, await agent.run(prompt, **extra), None))
    except TimeoutError:
        outbox.put((index, None, portable(ConversationTimeout(timeout or 0))))
    except Exception as exc:
        outbox.put((index, None, portable(exc)))


def portable(error: Exception) -> Exception:
    """The error itself if it survives pickling (it goes to the caller), else a BackendError saying what it was."""
    try:
        copy = pickle.loads(dumps(error))
    except Exception:
        copy = None
    if type(copy) is type(error) and str(copy) == str(error):
        return error
    return BackendError(f"{type(error).__name__}: {error}")


class Outbox:
    """Messages for one connection: whatever queued up while the last write went out goes in the next one."""

    def __init__(self, comm: Comm, key: str, *, pickled: bool = True) -> None:
        self.comm, self.key, self.items, self.ready = comm, key, list[Any](), asyncio.Event()
        self.pickled = pickled  # False: plain msgpack (a scheduler does not unpickle what comes in)
        self.writer = asyncio.create_task(self.write_all())

    def put(self, item: Any) -> None:
        self.items.append(item)
        self.ready.set()

    async def write_all(self) -> None:
        with contextlib.suppress(*CLOSED):
            while True:
                await self.ready.wait()
                self.ready.clear()
                items, self.items = self.items, []
                await self.comm.write({self.key: to_serialize(items) if self.pickled else items})

    def close(self) -> None:
        self.writer.cancel()


# -- The shared budget: a handle here and on the workers, the books on the scheduler ----------------------------


class SharedBudget:
    """One rate-limit budget for every worker of a Dask cluster, kept by the scheduler (see the module docstring).

    Pass it as ``budget=`` to ``run_distributed`` (several batches at once may share it), or to ``run_bounded``
    in any process that can reach the scheduler. ``minute`` is the provider's minute in seconds, as for
    ``Budget``. ``stats()`` reads the scheduler's books.
    """

    def __init__(
        self,
        client: dask.distributed.Client,
        *,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        minute: float | None = None,
    ) -> None:
        check_client(client)
        self.minute = check_positive("minute", minute)  # seconds, as Budget's: None, 60 s (learned from headers)
        self.requests_per_minute = check_positive("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = check_positive("tokens_per_minute", tokens_per_minute)
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ConfigurationError("a SharedBudget needs requests_per_minute=, tokens_per_minute= or both")
        self.name = f"agentlab-budget-{uuid.uuid4().hex[:12]}"
        self.client: dask.distributed.Client | None = client

    def __repr__(self) -> str:
        return (
            f"SharedBudget(requests_per_minute={self.requests_per_minute}, tokens_per_minute={self.tokens_per_minute})"
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "client": None}  # a Dask client does not travel

    async def call(self, send: Any, input_tokens: int) -> Any:
        """The budget contract (``agentlab.model.RateBudget``), here through the scheduler."""
        where: Any = dask.distributed.get_worker() if self.client is None else self.client
        return await self.linked(where.scheduler.address, where.connection_args).call(send, input_tokens)

    def linked(self, scheduler: str, connection_args: Mapping[str, Any]) -> LinkedBudget:
        """This process's link to the budget (one per event loop)."""
        links = LINKS.setdefault(asyncio.get_running_loop(), {})
        link = links.get(self.name)
        if link is None or link.broken:
            link = links[self.name] = LinkedBudget(self, scheduler, connection_args)
        return link

    def stats(self) -> Any:
        """The scheduler's books: calls, 429s, tokens, seconds waited, the median overhead of a reserve.

        A dict from a plain client; with ``Client(asynchronous=True)``, await it."""
        assert self.client is not None, "stats() is read where the SharedBudget was made"
        return self.client.run_on_scheduler(read_stats, self.name)


# Each process's links to shared budgets, per event loop (a worker has one long-lived loop).
LINKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, LinkedBudget]] = weakref.WeakKeyDictionary()


def read_stats(name: str, dask_scheduler: Any = None) -> dict[str, Any]:
    plugin = dask_scheduler.plugins.get(BUDGET_PLUGIN)
    return plugin.stats(name) if plugin else {"calls": 0}


@dataclasses.dataclass(slots=True, eq=False)
class Lease(Reservation):
    """A reservation held on the scheduler, known here by its number."""

    number: int = 0
    usage: tuple[int, int] | None = None
    overhead: float = 0.0


class LinkedBudget(Budget):
    """``Budget.call`` as it is (reserve, send, settle, retry through the budget); reserve and settle go to the
    scheduler. The limits held here are only for ``repr``: the books are the scheduler's."""

    def __init__(self, shared: SharedBudget, scheduler: str, connection_args: Mapping[str, Any]) -> None:
        super().__init__(shared.requests_per_minute, shared.tokens_per_minute)
        self.shared_minute = shared.minute
        self.name, self.scheduler, self.connection_args = shared.name, scheduler, connection_args
        self.numbers, self.grants = itertools.count(), dict[int, asyncio.Future[tuple[int, int, float]]]()
        self.outbox: Outbox | None = None
        self.connecting, self.broken = asyncio.Lock(), False
        self.reader: asyncio.Task[None] | None = None  # reads the grants as long as the connection lasts

    async def reserve(self, input_tokens: int) -> Reservation:
        outbox = await self.connected()
        number, asked = next(self.numbers), time.perf_counter()
        grant = self.grants[number] = asyncio.get_running_loop().create_future()
        outbox.put(("reserve", number, input_tokens))
        try:
            tokens, scaled, waited = await grant
        except asyncio.CancelledError:
            outbox.put(("cancel", number))  # granted meanwhile or not, the scheduler gives it back
            raise
        finally:
            self.grants.pop(number, None)
        overhead = max(0.0, time.perf_counter() - asked - waited)
        return Lease(tokens, input_tokens, scaled, asked, number, overhead=overhead)

    def learn_usage(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> None:
        if isinstance(reservation, Lease):
            reservation.usage = (input_tokens, output_tokens)

    def settle(self, reservation: Reservation, used: int | None, headers: Mapping[str, str], status: int) -> None:
        if isinstance(reservation, Lease) and self.outbox is not None:
            message = (reservation.number, used, rate_headers(headers), status, reservation.usage)
            self.outbox.put(("settle", *message, reservation.overhead))

    def refused(self, reservation: Reservation, exc: openai.APIError) -> float | None:
        status, headers = (exc.status_code, exc.response.headers) if isinstance(exc, openai.APIStatusError) else (0, {})
        self.settle(reservation, None, headers, status or -1)  # -1: no answer (a lost connection)
        return retry_after(headers)

    async def connected(self) -> Outbox:
        async with self.connecting:  # the first reserve connects; the others wait for it
            if self.outbox is None:
                scheduler = dask.distributed.rpc(self.scheduler, connection_args=self.connection_args)
                async with scheduler:  # installed once; installing it again changes nothing
                    plugin = dumps(BudgetPlugin())
                    await scheduler.register_scheduler_plugin(plugin=plugin, name=BUDGET_PLUGIN, idempotent=True)
                comm = await connect(self.scheduler, **self.connection_args)
                limits = {"requests_per_minute": self.requests_per_minute, "tokens_per_minute": self.tokens_per_minute}
                limits["minute"] = self.shared_minute
                await comm.write({"op": "agentlab_budget", "reply": False, "name": self.name} | limits)
                self.outbox = Outbox(comm, "m", pickled=False)
                self.reader = asyncio.create_task(self.read_grants(comm))
        return self.outbox

    async def read_grants(self, comm: Comm) -> None:
        try:
            while True:
                for number, tokens, scaled, waited in (await comm.read())["g"]:
                    grant = self.grants.get(number)
                    if grant is not None and not grant.done():
                        grant.set_result((tokens, scaled, waited))
        except CLOSED as exc:
            self.broken = True
            error = BackendError(f"lost the connection to the shared budget on the Dask scheduler ({exc!r})")
            for grant in self.grants.values():
                if not grant.done():
                    grant.set_exception(error)


def rate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a budget reads: the ``x-ratelimit-*`` ones and ``Retry-After``."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(("x-ratelimit-", "retry-after"))}


class BudgetPlugin(SchedulerPlugin):
    """The shared budgets of a cluster, by name, on the scheduler: each a ``Budget`` driven by its workers' links."""

    name = BUDGET_PLUGIN
    idempotent = True

    def __init__(self) -> None:
        self.budgets: dict[str, Budget] = {}
        self.overheads: dict[str, deque[float]] = {}  # seconds a reserve took beyond its wait, per budget

    async def start(self, scheduler: Any) -> None:
        scheduler.handlers["agentlab_budget"] = self.link

    async def link(self, comm: Comm, name: str, requests_per_minute: Any, tokens_per_minute: Any, minute: Any) -> None:
        """One worker's connection: reserve, cancel and settle messages in; grants out as they are made."""
        if name not in self.budgets:
            self.budgets[name] = Budget(requests_per_minute, tokens_per_minute, minute=minute)
        budget = self.budgets[name]
        held = Holdings(
            budget, Outbox(comm, "g", pickled=False), self.overheads.setdefault(name, deque(maxlen=100_000))
        )
        try:
            while True:
                for message in (await comm.read())["m"]:
                    held.handle(*message)
        except CLOSED:
            pass  # the worker is gone (or done): its leases come back after LEASE_SECONDS
        finally:
            held.close()
            comm.abort()  # whatever ended the link, the worker hears that it did

    def stats(self, name: str) -> dict[str, Any]:
        budget, overheads = self.budgets.get(name), self.overheads.get(name)
        if budget is None:
            return {"calls": 0}
        books, added = budget.stats, statistics.median(overheads) if overheads else math.nan
        return {"calls": books.calls, "rate_limited": books.rate_limited, "tokens": books.tokens} | {
            "waited": books.waited,
            "outstanding": len(budget.outstanding),
            "median_overhead": added,
        }


@dataclasses.dataclass
class Holdings:
    """What one worker's link holds of a budget: its leases, and the reservations it is waiting for."""

    budget: Budget
    outbox: Outbox
    overheads: deque[float]
    leases: dict[int, Reservation] = dataclasses.field(default_factory=dict)
    pending: dict[int, asyncio.Task[None]] = dataclasses.field(default_factory=dict)

    def handle(self, kind: str, number: int, *rest: Any) -> None:
        if kind == "reserve":
            self.pending[number] = asyncio.create_task(self.grant(number, rest[0]))
        elif kind == "cancel":
            if number in self.pending:
                self.pending.pop(number).cancel()
            if number in self.leases:
                self.budget.settle(self.leases.pop(number), 0, {}, 0)
        elif number in self.leases:
            used, headers, status, usage, overhead = rest
            self.overheads.append(overhead)
            self.settle(self.leases.pop(number), used, headers, status, usage)

    async def grant(self, number: int, input_tokens: int) -> None:
        asked = time.perf_counter()
        reservation = await self.budget.reserve(input_tokens)
        self.pending.pop(number, None)
        self.leases[number] = reservation
        self.outbox.put((number, reservation.tokens, reservation.scaled_input, time.perf_counter() - asked))

    def settle(
        self, reservation: Reservation, used: int | None, headers: dict[str, str], status: int, usage: Any
    ) -> None:
        """A worker's answer in the Budget's own terms: usage learned, then settled, or refused (4xx/5xx, no answer)."""
        if status in (0, 200):
            if usage is not None:
                self.budget.learn_usage(reservation, *usage)
            self.budget.settle(reservation, used, headers, status)
            return
        request = httpx2.Request("POST", "https://model.invalid/v1/responses")
        answer = httpx2.Response(max(status, 400), headers=headers, request=request)
        refusal = openai.APIStatusError("refused", response=answer, body=None)
        self.budget.refused(reservation, openai.APIConnectionError(request=request) if status < 0 else refusal)

    def close(self) -> None:
        for task in self.pending.values():
            task.cancel()
        self.outbox.close()
        if self.leases:
            asyncio.get_running_loop().call_later(LEASE_SECONDS, self.expire)

    def expire(self) -> None:
        """A dead worker's leases: settled as a cancelled call's are (its input counted as spent)."""
        for reservation in self.leases.values():
            self.budget.settle(reservation, reservation.input_tokens, {}, 0)
        self.leases.clear()
