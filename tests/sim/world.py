"""One simulated deployment, its workload and its faults, run from a seed.

Processes (each a group of tasks sharing fate: killed or paused together):

* API processes, each with its own Redis client (link, breaker), its own real
  ``CacheFence`` and ``AnswerWriteBack``, the real ``BalanceReads`` and
  ``LedgerService``. A client task reads one account (the cache through the
  read script, then on a miss the real ``BalanceReads._read_accounts``: store,
  write-back, fence), reads all of a user's balances (``_read_user``), deposits
  with ``wait`` (accept, then the real ``LedgerService._read_current`` polled
  until APPLIED, waiting what the write-back asks), or asks again for an earlier
  change (a duplicate retry or GetChange: ``_read_current``). ``BalanceReads.get``
  itself is async; its logic (cache first, then the store on a miss) is called
  synchronously here, each miss as a query of its own.
* The consumer: a model of ``BatchConsumer`` (claim, resume from the stored
  offset, decide with the real ``decide_batch``, or ``decide_columns`` for a first
  look at a batch of client changes as the real one does, commit offsets and balances and
  journal at once, then publish to the cache feed; republish a partition's tail
  after a claim, current balances after a retried commit), killed now and then
  between commit and publish, with ambiguous commits from the store.
* Two cache updater processes running the real ``CacheUpdater`` (its feed loop
  in the first, its full sync and lease renewal in whichever holds the real
  ``LeaderElector``'s lock) with a real ``CacheFence``.

The relay is a callback: an accepted request reaches the log shortly after, and
sometimes again later (a resend, which the consumer must de-duplicate).
"""

from __future__ import annotations

import hashlib
import itertools
import types
import unittest.mock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random

from ledgerd.cache import updater as updater_module
from ledgerd.cache.fence import CacheFence
from ledgerd.cache.updater import CacheUpdater
from ledgerd.consumer.columns import ColumnBatch, ColumnDecision, decide_columns
from ledgerd.consumer.decide import BatchDecision, decide_batch
from ledgerd.domain.model import (
    CLIENT_CHANGE_TYPES,
    LEGS_PER_MESSAGE,
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
)
from ledgerd.errors import CacheUnavailable, Fenced, LedgerError, StoreUnavailable
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import encode_balances
from ledgerd.reads import AnswerWriteBack, BalanceReads
from ledgerd.runtime.leader import CACHE_SYNC_LOCK, LeaderElector
from ledgerd.service import LedgerService
from ledgerd.store.base import PartitionClaim
from ledgerd.store.scan import iter_balances
from sim import old
from sim.checker import Checker
from sim.kernel import Event, Group, Killed, Sim, SimLock
from sim.redis import SimRedis, SimRedisClient
from sim.store import SimStore, StoreFaults, ordered_accounts

CHANGES_TOPIC = "balance-changes"
FEED_TOPIC = "balance-cache-feed"


# The fault menu: (``World._fault_<name>``, relative weight).
DEFAULT_FAULTS: tuple[tuple[str, float], ...] = (
    ("restart", 0.10),
    ("stall", 0.10),
    ("full", 0.07),
    ("flush", 0.07),
    ("evict", 0.06),
    ("cut", 0.15),
    ("slow", 0.13),
    ("pause", 0.08),
    ("kill", 0.08),
    ("rebalance", 0.08),
    ("snapshot", 0.08),
)


@dataclass(frozen=True)
class Config:
    api_processes: int = 3
    clients_per_api: int = 2
    users: int = 4
    currencies: tuple[str, ...] = ("A", "B")
    partitions: int = 2
    duration_s: float = 8.0  # workload and faults
    settle_s: float = 6.0  # then faults heal and the consumer drains
    fault_interval_s: float = 0.5  # mean time between faults
    faults: tuple[tuple[str, float], ...] = DEFAULT_FAULTS  # which (``World._fault_*``), how often
    slow_link_extra_s: tuple[float, float] = (0.1, 1.5)  # a slow link's added delay, at most
    api_kills: bool = True
    lease_ttl_s: float = 3.0
    readiness_check_interval_s: float = 1.0  # the leader's lease renewal period
    feed_lost: float = 0.04  # of the consumer's cache feed messages, lost
    feed_late: float = 0.04  # delivered 0.5-3 s late (after newer ones)
    # The old mechanisms (``sim.old``); all off: today's design.
    r1_unfenced_answers: bool = False
    r2_unwritten_buffer: bool = False
    r2_buffer_kept_until_landed: bool = False  # the control for r2
    r4_historical_writes_create: bool = False
    # FLUSH: the lease renewed without ``XX`` / a full sync without its marker.
    flush_renew_unchecked: bool = False
    flush_sync_unmarked: bool = False


@dataclass
class Result:
    seed: int
    config: Config
    violations: list[str]
    trace: list[str]
    reads: int
    applied_answers: int
    faults: int
    crash: str | None = None

    @property
    def ok(self) -> bool:
        return not self.violations and self.crash is None

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.trace).encode()).hexdigest()[:16]


# -- the cache feed (a log the real CacheUpdater consumes) -------------------------------
@dataclass
class FeedLog:
    """The feed topic, its group's committed offsets, and the consumer the updater uses."""

    sim: Sim
    rng: Random
    partitions: int
    records: dict[int, list[LogRecord]] = field(default_factory=dict)
    committed_offsets: dict[int, int] = field(default_factory=dict)
    arrived: Event | None = None
    partition_count: int = 0

    def append(self, partition: int, balance: Balance) -> None:
        rows = self.records.setdefault(partition, [])
        rows.append(LogRecord(FEED_TOPIC, partition, len(rows), b"", encode_balances([balance])))
        if self.arrived is not None:
            self.arrived.set()
            self.arrived = None

    def ensure_topics(self, topics: Sequence[str]) -> None:
        return None

    def consumer(self, group_id: str, *, skip_lost_records: bool = False) -> FeedConsumer:
        return FeedConsumer(self)  # nothing is removed from this log: nothing to skip


class FeedConsumer:
    def __init__(self, log: FeedLog) -> None:
        self._log = log
        self._positions: dict[int, int] | None = None
        self._assign: Callable[[Sequence[int]], Mapping[int, int]] | None = None
        self._revoke: Callable[[Sequence[int]], None] | None = None
        self._rebalance_due = False

    def subscribe(
        self,
        topic: str,
        on_assign: Callable[[Sequence[int]], Mapping[int, int]],
        on_revoke: Callable[[Sequence[int]], None],
    ) -> None:
        self._assign, self._revoke = on_assign, on_revoke

    def rebalance(self) -> None:
        """The group rebalanced: the next poll revokes and reads again from the committed
        offsets (a replay)."""
        # Served in ``poll_batch``, on the updater's task, as librdkafka serves rebalance
        # callbacks inside ``poll``: the fault injector is a scheduler callback, which must
        # not wait, and the updater's revoke callback may (it commits what it wrote). Run
        # from the injector, that wait ran on whichever task was scheduling and stranded it
        # (the consumer model stopped: every later change was "never applied").
        self._rebalance_due = self._positions is not None

    def _serve_rebalance(self) -> None:
        if self._rebalance_due and self._positions is not None and self._revoke is not None:
            self._rebalance_due = False
            self._revoke(list(self._positions))
            self._positions = None

    def committed(self, topic: str, partitions: Sequence[int]) -> Mapping[int, int]:
        return {p: self._log.committed_offsets.get(p, 0) for p in partitions}

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[LogRecord]:
        log, sim = self._log, self._log.sim
        sim.sleep(log.rng.uniform(0.0005, 0.003))
        self._serve_rebalance()
        if self._positions is None:
            assert self._assign is not None
            self._positions = dict(self._assign(list(range(log.partitions))))
        found: list[LogRecord] = []
        for partition, position in sorted(self._positions.items()):
            rows = log.records.get(partition, [])[position : position + max_messages]
            found += rows
            self._positions[partition] = position + len(rows)
        if not found and timeout_s > 0:
            log.arrived = log.arrived or Event(sim)
            sim.wait_event(log.arrived, timeout_s)
        return found

    def commit(self, next_offsets: Mapping[int, int]) -> None:
        self._log.sim.sleep(self._log.rng.uniform(0.0005, 0.003))
        self._log.committed_offsets.update(next_offsets)

    def close(self) -> None:
        return None


# -- processes ------------------------------------------------------------------------
class Process:
    """A group of tasks that die together; ``start`` spawns a fresh incarnation."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.group = Group()
        self.incarnation = 0
        self.alive = False
        self.client: SimRedisClient | None = None

    def new_client(self) -> SimRedisClient:
        client = self.world.client_class(self)(self.world.redis, self.world.rng, self.name)
        client.note = self.world.note
        return client

    def start(self) -> None:
        self.incarnation += 1
        self.alive = True
        self.group = Group()
        self.spawn_tasks()

    def spawn_tasks(self) -> None:
        raise NotImplementedError

    def kill(self, restart_after_s: float) -> None:
        if not self.alive:
            return
        world = self.world
        self.alive = False
        world.note(f"kill {self.name}#{self.incarnation}")
        for task in world.sim.tasks:
            if task.group is self.group:
                world.sim.interrupt(task, Killed())
        self.group.paused_until = 0.0
        world.sim.call_at(world.sim.now + restart_after_s, self.start)


class ApiProcess(Process):
    def spawn_tasks(self) -> None:
        world, config = self.world, self.world.config
        self.client = client = self.new_client()
        self.fence = CacheFence(world.store, clock=lambda: world.sim.now)  # type: ignore[arg-type]
        self.fence._lock = SimLock(world.sim)  # type: ignore[assignment]
        write_back_class = (
            old.SwallowingWriteBack
            if config.r1_unfenced_answers or config.r2_unwritten_buffer
            else AnswerWriteBack
        )
        self.write_back = write_back_class(world.store, client, self.fence)  # type: ignore[arg-type]
        self.reads = BalanceReads(world.store, client, self.write_back)  # type: ignore[arg-type]
        service_class = (
            old.BalanceAfterService if config.r4_historical_writes_create else LedgerService
        )
        self.service = service_class(world.store, client, None, None, fence=self.fence)  # type: ignore[arg-type]
        self.service._write_back = self.write_back
        for slot in range(config.clients_per_api):
            name = f"{self.name}#{self.incarnation}/c{slot}"
            world.sim.spawn(name, lambda name=name: self.client_loop(name), 0.0, self.group)

    def client_loop(self, name: str) -> None:
        world = self.world
        rng = world.rng
        while world.sim.now < world.config.duration_s:
            world.sim.sleep(rng.expovariate(1 / 0.08))
            if world.sim.now >= world.config.duration_s:
                return
            roll = rng.random()
            try:
                if roll < 0.45:
                    self.read_one(name, world.pick_account())
                elif roll < 0.55:
                    self.read_user(name, rng.randint(1, world.config.users))
                elif roll < 0.88:
                    self.deposit(name, world.pick_account())
                else:
                    self.ask_again(name)
            except LedgerError as exc:
                world.note(f"{name} error {type(exc).__name__}")

    def read_one(self, name: str, account: Account) -> None:
        world, sim = self.world, self.world.sim
        began = sim.now
        assert self.client is not None
        try:
            cached = self.client.read(account)
        except CacheUnavailable:
            cached = None
        if cached is not None:
            world.answered(cached, began, f"{name} cache-hit", is_read=True)
            return
        answers, wait_s = self.reads._read_accounts({account})
        if wait_s:
            sim.sleep(wait_s)
        world.answered(answers[account], began, f"{name} miss(wait {wait_s:.3f})", is_read=True)

    def read_user(self, name: str, user_id: int) -> None:
        world, sim = self.world, self.world.sim
        began = sim.now
        stored, wait_s = self.reads._read_user(user_id)
        if wait_s:
            sim.sleep(wait_s)
        for balance in stored:
            world.answered(balance, began, f"{name} read-all(wait {wait_s:.3f})", is_read=True)

    def deposit(self, name: str, account: Account) -> None:
        world = self.world
        request = ChangeRequest(
            f"r{next(world.request_ids)}",
            account.user_id,
            account.currency,
            ChangeType.DEPOSIT,
            world.rng.randint(1, 100),
        )
        duplicate = world.store.accept(request)
        assert not duplicate
        world.accepted[request.request_id] = request
        world.relay(request)
        self.await_outcome(name, request.request_id, duplicate=False, wait=True)

    def ask_again(self, name: str) -> None:
        """A retry of an earlier request (answered as a duplicate) or GetChange."""
        world = self.world
        if not world.accepted:
            return
        rid = world.rng.choice(sorted(world.accepted))
        self.await_outcome(name, rid, duplicate=True, wait=world.rng.random() < 0.5)

    def await_outcome(self, name: str, rid: str, *, duplicate: bool, wait: bool) -> None:
        """``LedgerService``'s wait: read the current answer (writing its account back)
        until it is final or the deadline passes."""
        world, sim = self.world, self.world.sim
        deadline = sim.now + 10.0
        interval = 0.05
        while True:
            began = sim.now
            answers, wait_s = self.service._read_current({rid: duplicate})
            if wait_s:
                sim.sleep(wait_s)
            answer = answers[rid]
            if answer.status is ChangeStatus.APPLIED:
                assert answer.balance is not None
                world.answered(
                    answer.balance,
                    began,
                    f"{name} {'dup' if duplicate else 'wait'} {rid} APPLIED(wait {wait_s:.3f})",
                    is_read=False,
                )
                return
            if not wait or sim.now + interval >= deadline:
                return
            sim.sleep(interval)
            interval = min(interval * 2, 0.5)


class ConsumerProcess(Process):
    """A model of ``BatchConsumer`` on every partition of the changes topic."""

    batch_max = 4

    def spawn_tasks(self) -> None:
        self.world.sim.spawn(f"{self.name}#{self.incarnation}", self.run, 0.0, self.group)

    def run(self) -> None:
        """``BatchConsumer.run``: a retriable error anywhere rewinds to the store's positions
        (claimed again, memory emptied, tails republished)."""
        while True:
            try:
                self.session()
            except StoreUnavailable:
                self.world.sim.sleep(0.1)

    def session(self) -> None:
        world, sim, store, rng = self.world, self.world.sim, self.world.store, self.world.rng
        claims = {p: store.claim_partition(CHANGES_TOPIC, p) for p in self.partitions()}
        positions = {p: c.next_offset for p, c in claims.items()}
        memory: dict[Account, Balance] = {}
        self.republish_tails(positions)
        while True:
            records: list[tuple[int, int, ChangeRequest, bool]] = []
            for p in sorted(positions):
                log = world.changes[p][positions[p] : positions[p] + self.batch_max]
                records += [(p, positions[p] + i, req, first) for i, (req, first) in enumerate(log)]
            if not records:
                sim.sleep(rng.uniform(0.01, 0.05))
                continue
            next_offsets = {p: max(o for q, o, _, _ in records if q == p) + 1 for p, *_ in records}
            batch = [PositionedChange(p, o, r, first) for p, o, r, first in records]
            try:
                decision = self.decide(batch, memory, check_all=False)
                store.commit(self.positions(claims, next_offsets), decision)
            except Fenced:
                return self.restart_soon()
            except StoreUnavailable:
                # The commit may have happened: decide again, checking every request.
                # Memory may not match the store for these partitions: reload them.
                memory.clear()
                decision = self.retry(batch, claims, next_offsets)
                if decision is None:
                    return self.restart_soon()
                memory.update(decision.balances)
                self.publish(decision.balances)
                unpublished = {c.request.account for c in batch} - set(decision.balances)
                if unpublished:
                    self.republish(dict(store.load_balances(ordered_accounts(unpublished))))
                positions.update(next_offsets)
                continue
            if rng.random() < 0.05:
                world.note(f"{self.name} killed between commit and publish")
                self.kill(rng.uniform(0.05, 1.0))
                sim.sleep(1.0)  # the kill lands at this wait
            memory.update(decision.balances)
            self.publish(decision.balances)
            positions.update(next_offsets)

    def restart_soon(self) -> None:
        self.kill(self.world.rng.uniform(0.05, 0.5))
        self.world.sim.sleep(1.0)

    def partitions(self) -> list[int]:
        return list(range(self.world.config.partitions))

    @staticmethod
    def positions(
        claims: Mapping[int, PartitionClaim], next_offsets: Mapping[int, int]
    ) -> list[PartitionClaim]:
        return [
            PartitionClaim(CHANGES_TOPIC, p, claims[p].epoch, o)
            for p, o in sorted(next_offsets.items())
        ]

    def decide(
        self, batch: list[PositionedChange], memory: dict[Account, Balance], *, check_all: bool
    ) -> BatchDecision | ColumnDecision:
        store = self.world.store
        # Resends are checked against the store; first publications are trusted (as the
        # real consumer does within its trust window), unless a retry checks them all.
        check = {c.request.request_id for c in batch if check_all or not c.first}
        already = set(store.decided_requests(check)) if check else set()
        accounts = ordered_accounts({c.request.account for c in batch})
        missing = [a for a in accounts if a not in memory]
        loaded = store.load_balances(missing) if missing else {}
        view = {
            a: memory.get(a) or loaded.get(a) or Balance(a.user_id, a.currency) for a in accounts
        }
        if not check_all and all(
            c.request.type in CLIENT_CHANGE_TYPES
            and not c.request.atomic_group
            and not c.request.transfer_id
            for c in batch
        ):
            # The real consumer's column path (messages decoded straight into columns).
            columns = ColumnBatch(
                [c.request.request_id for c in batch], [c.request.user_id for c in batch],
                [c.request.currency for c in batch], [c.request.type for c in batch],
                [c.request.amount for c in batch], [c.request.memo for c in batch],
                [c.partition for c in batch],
                [c.offset * LEGS_PER_MESSAGE + 1 for c in batch], check,
            )  # fmt: skip
            keyed = {(a.user_id, a.currency): balance for a, balance in view.items()}
            return decide_columns(columns, already, keyed, store.now_ms())
        return decide_batch(
            [c.request for c in batch],
            already,
            view,
            store.now_ms(),
            [(c.partition, c.offset * LEGS_PER_MESSAGE + 1) for c in batch],
        )

    def retry(
        self,
        batch: list[PositionedChange],
        claims: Mapping[int, PartitionClaim],
        next_offsets: Mapping[int, int],
    ) -> BatchDecision | ColumnDecision | None:
        """``BatchConsumer._retry``: the commit may have happened; decide again, checking
        every request against the store."""
        store, sim = self.world.store, self.world.sim
        for attempt in range(3):
            sim.sleep(0.05 * 2**attempt)
            try:
                decision = self.decide(batch, {}, check_all=True)
                store.commit(self.positions(claims, next_offsets), decision)
                return decision
            except Fenced:
                return None
            except StoreUnavailable:
                continue
        return None

    def publish(self, balances: Mapping[Account, Balance]) -> None:
        """Committed balances to the cache feed; the producer may lose or delay some."""
        world, rng = self.world, self.world.rng
        for balance in balances.values():
            roll = rng.random()
            config = world.config
            if roll < config.feed_lost:
                world.note(f"feed lost {balance.user_id}:{balance.currency} v{balance.version}")
                continue
            late = roll < config.feed_lost + config.feed_late
            delay = rng.uniform(0.5, 3.0) if late else rng.uniform(0.001, 0.02)
            partition = world.partition_of(balance.account)
            world.sim.call_at(
                world.sim.now + delay, lambda p=partition, b=balance: world.feed.append(p, b)
            )

    def republish(self, balances: Mapping[Account, Balance]) -> None:
        self.publish(balances)

    def republish_tails(self, positions: Mapping[int, int]) -> None:
        """``BatchConsumer._republish_tails``: the newest balances of each partition's last
        records, published again after a claim (a kill may have left them unpublished)."""
        store = self.world.store
        window = self.batch_max * 2
        newest: dict[Account, Balance] = {}
        for partition, position in sorted(positions.items()):
            first = max(0, position - window) * LEGS_PER_MESSAGE
            for entry in store.scan_events(partition, first, window * LEGS_PER_MESSAGE):
                balance = entry.balance_after
                known = newest.get(balance.account)
                if known is None or known.version < balance.version:
                    newest[balance.account] = balance
        if newest:
            self.republish(newest)


@dataclass(frozen=True)
class PositionedChange:
    partition: int
    offset: int
    request: ChangeRequest
    first: bool


class UpdaterProcess(Process):
    """The real CacheUpdater: feed loop (``feeds``), full syncs and lease while leading."""

    def __init__(self, world: World, name: str, *, feeds: bool) -> None:
        super().__init__(world, name)
        self.feeds = feeds
        self.feed_consumer: FeedConsumer | None = None

    def spawn_tasks(self) -> None:
        world = self.world
        self.client = client = self.new_client()
        clock = lambda: world.sim.now  # noqa: E731
        self.fence = CacheFence(world.store, clock=clock)  # type: ignore[arg-type]
        self.fence._lock = SimLock(world.sim)  # type: ignore[assignment]
        self.elector = LeaderElector(
            world.store,  # type: ignore[arg-type]
            name=CACHE_SYNC_LOCK,
            owner=f"{self.name}#{self.incarnation}",
            clock=clock,
        )
        self.updater = CacheUpdater(
            client,  # type: ignore[arg-type]
            world.feed,  # type: ignore[arg-type]
            topic=FEED_TOPIC,
            group_id="cache-updaters",
            full_sync_source=lambda: iter_balances(world.store, page_rows=3),  # type: ignore[arg-type]
            may_run_full_sync=self.elector.is_leader,
            fence=self.fence,
            lease_ttl_s=world.config.lease_ttl_s,
            readiness_check_interval_s=world.config.readiness_check_interval_s,
        )
        tag = f"{self.name}#{self.incarnation}"
        world.sim.spawn(f"{tag}/elector", self.elect, 0.0, self.group)
        world.sim.spawn(f"{tag}/sync", self.sync, 0.01, self.group)
        if self.feeds:
            world.sim.spawn(f"{tag}/feed", self.feed, 0.0, self.group)

    def elect(self) -> None:
        while True:
            self.elector.step()
            self.world.sim.sleep(2.0)

    def sync(self) -> None:
        """``CacheUpdater.run_full_sync``'s loop, on the fake clock."""
        updater, sim = self.updater, self.world.sim
        failures = 0
        while True:
            updater.full_sync_once()
            if updater._full_sync_wanted and self.elector.is_leader():
                failures += 1
                delay = min(5.0, 0.1 * 2 ** (failures - 1))
            else:
                failures, delay = 0, self.world.config.readiness_check_interval_s
            sim.sleep(delay)

    def feed(self) -> None:
        """``CacheUpdater.run_feed``'s loop, on the fake clock."""
        updater, sim = self.updater, self.world.sim
        self.feed_consumer = updater._consumer  # type: ignore[assignment]
        failures = 0
        while True:
            try:
                updater.feed_once(0.5)
                failures = 0
            except CacheUnavailable:
                failures += 1
                sim.sleep(min(5.0, 0.1 * 2 ** (failures - 1)))


# -- the world --------------------------------------------------------------------------
class World:
    def __init__(self, seed: int, config: Config, *, trace: bool = False) -> None:
        self.seed = seed
        self.config = config
        self.rng = Random(seed)
        self.sim = Sim()
        self.tracing = trace
        self.trace: list[str] = []
        self.checker = Checker()
        self.store = SimStore(self.sim, self.rng, StoreFaults(fail_before=0.01, fail_after=0.01))
        self.redis = SimRedis(self.sim, self.rng, note=self.note)
        self.feed = FeedLog(self.sim, self.rng, config.partitions)
        self.changes: dict[int, list[tuple[ChangeRequest, bool]]] = {
            p: [] for p in range(config.partitions)
        }
        self.accepted: dict[str, ChangeRequest] = {}
        self.request_ids = itertools.count(1)
        self.faults = 0
        self.apis = [ApiProcess(self, f"api{i}") for i in range(config.api_processes)]
        self.consumer = ConsumerProcess(self, "consumer")
        self.updaters = [
            UpdaterProcess(self, "updater0", feeds=True),
            UpdaterProcess(self, "updater1", feeds=False),
        ]
        self.accounts = [
            Account(u, c) for u in range(1, config.users + 1) for c in config.currencies
        ]

    def client_class(self, process: Process) -> type[SimRedisClient]:
        config = self.config
        if isinstance(process, UpdaterProcess) and (
            config.flush_renew_unchecked or config.flush_sync_unmarked
        ):
            return type(
                "UncheckedLeaseClient",
                (old.UncheckedLeaseClient,),
                {
                    "renew_unchecked": config.flush_renew_unchecked,
                    "sync_unmarked": config.flush_sync_unmarked,
                },
            )
        if config.r4_historical_writes_create:
            return old.AlwaysCreateClient
        if isinstance(process, ApiProcess):
            if config.r2_unwritten_buffer:
                if config.r2_buffer_kept_until_landed:
                    return type(
                        "KeptBufferClient",
                        (old.UnwrittenBufferClient,),
                        {"keep_until_landed": True},
                    )
                return old.UnwrittenBufferClient
            if config.r1_unfenced_answers:
                return old.BreakerWritesClient
        return SimRedisClient

    # -- helpers for the actors ------------------------------------------------------
    def note(self, line: str) -> None:
        self.trace.append(f"t={self.sim.now:.6f} {line}")

    def pick_account(self) -> Account:
        return self.rng.choice(self.accounts)

    def partition_of(self, account: Account) -> int:
        return account.user_id % self.config.partitions

    def answered(self, balance: Balance, began: float, what: str, *, is_read: bool) -> None:
        self.note(
            f"{what} {balance.user_id}:{balance.currency} v{balance.version} (began {began:.6f})"
        )
        self.checker.answered(balance, began=began, now=self.sim.now, what=what, is_read=is_read)

    def relay(self, request: ChangeRequest) -> None:
        """The outbox relay publishes the accepted request; now and then twice (a resend)."""
        partition = self.partition_of(request.account)
        log = self.changes[partition]
        self.sim.call_at(
            self.sim.now + self.rng.uniform(0.001, 0.05), lambda: log.append((request, True))
        )
        if self.rng.random() < 0.05:
            self.sim.call_at(
                self.sim.now + self.rng.uniform(0.1, 3.0), lambda: log.append((request, False))
            )

    # -- faults ----------------------------------------------------------------------
    def inject(self) -> None:
        """At random times until the workload ends: one fault from the menu."""
        rng, sim, config = self.rng, self.sim, self.config
        at = rng.expovariate(1 / config.fault_interval_s)
        if at >= config.duration_s:
            return
        sim.call_at(at, self._fault)

    def _fault(self) -> None:
        rng = self.rng
        self.faults += 1
        roll, total = rng.random(), 0.0
        weights = self.config.faults
        for name, weight in weights:
            total += weight / sum(w for _, w in weights)
            if roll < total:
                getattr(self, f"_fault_{name}")()
                break
        self.inject_next()

    def _fault_restart(self) -> None:
        down = self.rng.uniform(0.05, 1.0)
        self.note(f"FAULT redis restart (down {down:.3f}s)")
        self.redis.restart(down)

    def _fault_stall(self) -> None:
        stall = self.rng.uniform(0.1, 1.5)
        self.note(f"FAULT redis stall {stall:.3f}s")
        self.redis.stalled_until = max(self.redis.stalled_until, self.sim.now + stall)

    def _fault_full(self) -> None:
        full = self.rng.uniform(0.2, 2.0)
        self.note(f"FAULT redis full {full:.3f}s")
        self.redis.full_until = self.sim.now + full

    def _fault_flush(self) -> None:
        """An operator's FLUSHDB: a command like any other (it waits out a stall, behind
        the commands that arrived before it)."""
        redis = self.redis
        self.note("FAULT redis FLUSHDB sent")

        def flush() -> None:
            self.note("redis: FLUSHDB (every key, lease and marker included)")
            redis.flush()

        redis.submit(flush, lambda why: self.note(f"redis: FLUSHDB failed: {why}"), 0)

    def _fault_evict(self) -> None:
        # Only keys with an expiry: real balances have none, and ``allkeys-*`` policies,
        # which could drop them, get no lease (``RedisCache.eviction_risk``).
        self.note(f"FAULT redis evicts {self.redis.evict()}")

    def _fault_cut(self) -> None:
        process = self.rng.choice([*self.apis, *self.updaters])
        if process.client is not None:
            down = self.rng.uniform(0.1, 2.0)
            self.note(f"FAULT {process.name} cut off from redis {down:.3f}s")
            process.client.link.down_until = self.sim.now + down

    def _fault_slow(self) -> None:
        rng = self.rng
        process = rng.choice([*self.apis, *self.updaters])
        if process.client is not None:
            slow, extra = rng.uniform(0.2, 2.0), rng.uniform(*self.config.slow_link_extra_s)
            self.note(f"FAULT {process.name} link slow {slow:.3f}s (+{extra:.3f}s)")
            link = process.client.link
            link.slow_until, link.slow_s = self.sim.now + slow, extra

    def _fault_pause(self) -> None:
        process = self.rng.choice([*self.apis, *self.updaters, self.consumer])
        pause = self.rng.uniform(0.1, 6.0)
        self.note(f"FAULT pause {process.name} {pause:.3f}s")
        process.group.paused_until = self.sim.now + pause

    def _fault_kill(self) -> None:
        victims: list[Process] = [self.consumer, *self.updaters]
        if self.config.api_kills:
            victims += self.apis
        self.rng.choice(victims).kill(self.rng.uniform(0.05, 1.0))

    def _fault_rebalance(self) -> None:
        consumer = self.updaters[0].feed_consumer
        if consumer is not None and self.updaters[0].alive:
            self.note("FAULT cache feed rebalance (replay from committed offsets)")
            consumer.rebalance()

    def _fault_snapshot(self) -> None:
        self.note("redis snapshot (RDB)")
        self.redis.snapshot()

    def inject_next(self) -> None:
        at = self.sim.now + self.rng.expovariate(1 / self.config.fault_interval_s)
        if at < self.config.duration_s:
            self.sim.call_at(at, self._fault)

    def _snapshot_tick(self) -> None:
        self.redis.snapshot()
        if self.sim.now < self.config.duration_s:
            self.sim.call_at(self.sim.now + self.rng.uniform(0.5, 2.0), self._snapshot_tick)

    def _heal(self) -> None:
        """The workload is over: faults stop, the consumer drains the log."""
        self.note("heal")
        self.redis.stalled_until = self.redis.full_until = 0.0
        for process in [*self.apis, *self.updaters, self.consumer]:
            process.group.paused_until = 0.0
            if process.client is not None:
                process.client.link.down_until = process.client.link.slow_until = 0.0
        self.store.faults = StoreFaults(slow=0.0)

    # -- the run ---------------------------------------------------------------------
    def run(self) -> Result:
        sim, config = self.sim, self.config
        for process in [*self.updaters, self.consumer, *self.apis]:
            process.start()
        sim.call_at(0.0, self._snapshot_tick)
        self.inject()
        sim.call_at(config.duration_s, self._heal)
        sim.run(until=config.duration_s + config.settle_s)
        if sim.crash is None:
            self.checker.check_ledger(self.store, self.accepted)
        return Result(
            seed=self.seed,
            config=config,
            violations=self.checker.violations,
            trace=self.trace,
            reads=self.checker.reads,
            applied_answers=self.checker.applied_answers,
            faults=self.faults,
            crash=sim.crash,
        )


def run_seed(seed: int, config: Config | None = None) -> Result:
    """One simulation, a pure function of ``seed`` and ``config``."""
    import structlog.testing

    world = World(seed, config or Config())
    # ``CacheUpdater`` times its lease renewals during a full sync on ``time.monotonic``:
    # the fake clock, or they would depend on the host's speed.
    fake_time = types.SimpleNamespace(monotonic=lambda: world.sim.now)
    with (
        structlog.testing.capture_logs(),
        unittest.mock.patch.object(updater_module, "time", fake_time),
    ):
        return world.run()
