"""An in-memory model of the SQL store: the tables the read path and the consumer touch.

Every call is one round trip to the database: the request travels, the statement
runs atomically (at one instant of the fake clock), the reply travels; a task
killed or a call failing in between behaves as with a real connection (before:
nothing happened; after: it happened, the caller does not know). Times in the
leader-lock rows are the fake clock's, as ``SqlStore(clock_ms=...)`` would use.
``test_sim.py::test_store_model_fences_like_sqlite`` holds the fence and lock
statements equal to ``SqliteStore``'s.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import TypeVar

from ledgerd.consumer.columns import ColumnDecision
from ledgerd.consumer.decide import BatchDecision
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    StoredRequest,
)
from ledgerd.errors import Fenced, StoreUnavailable
from ledgerd.store.base import LockToken, PartitionClaim
from sim.kernel import Sim

T = TypeVar("T")


@dataclass
class _LockRow:
    owner: str = ""
    epoch: int = 0
    expires_at_ms: int = 0


@dataclass
class StoreFaults:
    """How the database misbehaves (probabilities per call)."""

    fail_before: float = 0.0  # the call fails, nothing happened
    fail_after: float = 0.0  # the call happened, its reply is lost (an ambiguous failure)
    slow: float = 0.02  # a slow statement (lock wait, fsync)


@dataclass
class SimStore:
    """Balances, journal, outbox rows, partition offsets and leader_locks rows."""

    sim: Sim
    rng: Random
    faults: StoreFaults = field(default_factory=StoreFaults)
    balances: dict[Account, Balance] = field(default_factory=dict)
    journal: dict[str, JournalEntry] = field(default_factory=dict)
    requests: dict[str, ChangeRequest] = field(default_factory=dict)
    events: dict[int, list[tuple[int, JournalEntry]]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    locks: dict[str, _LockRow] = field(default_factory=dict)
    calls: int = 0

    # -- the round trip -------------------------------------------------------------
    def _latency(self) -> float:
        if self.rng.random() < self.faults.slow:
            return self.rng.uniform(0.02, 0.3)
        return self.rng.uniform(0.0002, 0.002)

    def _call(self, statement: Callable[[], T], *, may_fail: bool = True) -> T:
        self.calls += 1
        self.sim.sleep(self._latency())
        if may_fail and self.rng.random() < self.faults.fail_before:
            raise StoreUnavailable("sim: connection lost before the statement")
        result = statement()
        self.sim.sleep(self._latency())
        if may_fail and self.rng.random() < self.faults.fail_after:
            raise StoreUnavailable("sim: connection lost after the statement")
        return result

    def now_ms(self) -> int:
        return int(self.sim.now * 1000)

    # -- outbox and outcomes --------------------------------------------------------
    def accept(self, request: ChangeRequest) -> bool:
        """Insert the request's outbox row; whether it was there already (a retry)."""

        def run() -> bool:
            if request.request_id in self.requests:
                return True
            self.requests[request.request_id] = request
            return False

        return self._call(run)

    def get_requests(self, request_ids: Collection[str]) -> Mapping[str, StoredRequest]:
        def run() -> dict[str, StoredRequest]:
            found = {}
            for rid in sorted(request_ids):
                request = self.requests.get(rid)
                if request is not None:
                    # As the SQL store: the status is final once the journal holds it.
                    status = ChangeStatus.APPLIED if rid in self.journal else ChangeStatus.PENDING
                    found[rid] = StoredRequest(request, status)
            return found

        return self._call(run)

    def decided_requests(self, request_ids: Collection[str]) -> Collection[str]:
        return self._call(lambda: [rid for rid in sorted(request_ids) if rid in self.journal])

    def get_journal_entries(self, request_ids: Collection[str]) -> Mapping[str, JournalEntry]:
        return self._call(
            lambda: {r: self.journal[r] for r in sorted(request_ids) if r in self.journal}
        )

    # -- balances -------------------------------------------------------------------
    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        return self._call(
            lambda: {a: self.balances[a] for a in ordered_accounts(accounts) if a in self.balances}
        )

    def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        def run() -> list[Balance]:
            found = [b for a, b in self.balances.items() if a.user_id == user_id]
            if currency is not None:
                found = [b for b in found if b.currency == currency]
            return sorted(found, key=lambda b: b.currency)

        return self._call(run)

    def scan_balances(self, after: Account | None, limit: int) -> Sequence[Balance]:
        def run() -> list[Balance]:
            keys = sorted(self.balances, key=lambda a: (a.user_id, a.currency))
            start = 0
            if after is not None:
                start = bisect.bisect_right(
                    [(a.user_id, a.currency) for a in keys], (after.user_id, after.currency)
                )
            return [self.balances[a] for a in keys[start : start + limit]]

        return self._call(run)

    # -- consumer -------------------------------------------------------------------
    def claim_partition(self, topic: str, partition: int) -> PartitionClaim:
        def run() -> PartitionClaim:
            next_offset, epoch = self.offsets.get((topic, partition), (0, 0))
            self.offsets[topic, partition] = (next_offset, epoch + 1)
            return PartitionClaim(topic, partition, epoch + 1, next_offset)

        return self._call(run)

    def get_positions(self, topic: str) -> Mapping[int, int]:
        return self._call(lambda: {p: o for (t, p), (o, _) in self.offsets.items() if t == topic})

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        def run() -> list[JournalEntry]:
            rows = self.events.get(partition, [])
            start = bisect.bisect_right([seq for seq, _ in rows], after_seq)
            return [entry for _, entry in rows[start : start + limit]]

        return self._call(run)

    def commit(
        self, positions: Sequence[PartitionClaim], decision: BatchDecision | ColumnDecision
    ) -> None:
        """The batch's transaction: offsets by compare-and-set on the epoch, balances,
        journal (request ids unique: the second guard against applying twice).

        Raises:
            Fenced, StoreUnavailable.
        """

        def run() -> None:
            for position in positions:
                key = (position.topic, position.partition)
                if self.offsets.get(key, (0, 0))[1] != position.epoch:
                    raise Fenced(f"partition {key}", position.partition)
            for entry in decision.journal:
                if entry.request_id in self.journal:
                    raise AssertionError(f"journal: duplicate request id {entry.request_id}")
            for position in positions:
                self.offsets[position.topic, position.partition] = (
                    position.next_offset,
                    position.epoch,
                )
            for account, balance in decision.balances.items():
                self.balances[account] = balance
            for entry in decision.journal:
                self.journal[entry.request_id] = entry
                self.events.setdefault(entry.partition, []).append((entry.event_seq, entry))

        self._call(run)

    # -- leader locks and the read fence (rows of leader_locks) ---------------------
    def _row(self, name: str) -> _LockRow:
        return self.locks.setdefault(name, _LockRow())

    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        def run() -> int | None:
            row, now = self._row(name), self.now_ms()
            if row.expires_at_ms > now:
                return None
            row.owner, row.epoch, row.expires_at_ms = owner, row.epoch + 1, now + ttl_ms
            return row.epoch

        return self._call(run)

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        def run() -> bool:
            row, now = self._row(token.name), self.now_ms()
            if (row.owner, row.epoch) != (token.owner, token.epoch) or row.expires_at_ms <= now:
                return False
            row.expires_at_ms = now + ttl_ms
            return True

        return self._call(run)

    def release_lock(self, token: LockToken) -> None:
        def run() -> None:
            row = self._row(token.name)
            if (row.owner, row.epoch) == (token.owner, token.epoch):
                row.expires_at_ms = 0

        self._call(run)

    def raise_fence(self, name: str) -> int:
        def run() -> int:
            row = self._row(name)
            row.epoch += 1
            return max(0, row.expires_at_ms - self.now_ms())

        return self._call(run)

    def fence_generation(self, name: str) -> int:
        return self._call(lambda: self.locks[name].epoch if name in self.locks else 0)

    def grant_lease(self, name: str, generation: int, ttl_ms: int) -> bool:
        def run() -> bool:
            row = self._row(name)
            if row.epoch != generation:
                return False
            row.expires_at_ms = self.now_ms() + ttl_ms
            return True

        return self._call(run)


def ordered_accounts(accounts: Iterable[Account]) -> list[Account]:
    """In one order whatever the hash seed (a set of accounts iterates in an order that
    depends on ``PYTHONHASHSEED``, and a replay in another process must not)."""
    return sorted(accounts, key=lambda a: (a.user_id, a.currency))
