"""The store interface every backend implements (SQLite embedded, MySQL in production).

Methods are synchronous and thread-safe; async callers run them in a thread.
Every method raises ``StoreUnavailable`` when the database cannot be reached
and ``TransientStoreError`` for deadlocks and lost races.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ledgerd.domain.holds import Hold
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
    StoredRequest,
)


@dataclass(frozen=True, slots=True)
class PartitionClaim:
    """Ownership of one partition: the fencing epoch and where to resume."""

    topic: str
    partition: int
    epoch: int
    next_offset: int
    # The topic incarnation ``next_offset`` was read in (``PartitionIdentity.topic_id``),
    # '' while none is recorded.
    topic_id: str = ""
    # The newest batch stamp the store has recorded, over every partition, when claimed:
    # the claimer stamps no batch earlier, so an account's stamps never fall as its
    # versions rise, even when its partition moves to a consumer whose clock is behind.
    stamped_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """A request whose log record went to the DLQ: from its commit on, the request reads
    FAILED (until an outcome, after a replay, says otherwise)."""

    request_id: str
    topic: str
    partition: int
    offset: int
    reason: str  # "store_rejected" or "decision_failed"
    error: str


# A journal entry as a tuple of ``JournalEntry``'s fields, in their order.
JournalRow = tuple[
    str, int, str, ChangeType, int, int, int, int, int, str, str, int, int, int, str, int
]
# A client change's rejection: request_id, user_id, currency, type, amount, memo, reason.
RejectionRow = tuple[str, int, str, ChangeType, int, str, RejectReason]


@dataclass(frozen=True, slots=True)
class DecidedRows:
    """A batch's journal and rejections as rows of plain values (the consumer's common
    path): ``BatchCommit.journal`` and ``rejections`` hold the same, as objects."""

    journal: Sequence[JournalRow]
    rejections: Sequence[RejectionRow]


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """How often deciding the record at ``offset`` of a partition failed (durable)."""

    partition: int
    offset: int
    attempts: int


@dataclass(frozen=True, slots=True)
class BatchCommit:
    """Everything one consumer batch writes, committed in one transaction.

    One row per change (its journal entry, or its rejection) and one offset per
    partition; the decided requests' outbox rows are deleted by key (none is read). No
    balance is written apart: an account's balance is its newest journal entry.

    ``positions`` carry each partition's next offset and the epoch the writer
    claimed it with; a stale epoch makes the whole commit fail with ``Fenced``.
    """

    positions: Sequence[PartitionClaim]
    journal: Sequence[JournalEntry]
    rejections: Sequence[Rejection]
    applied_at_ms: int
    # New outbox rows the batch sends on (a transfer's credit, or its return), one publish
    # group: in the same transaction, so an applied debit always has its credit.
    follow_ups: Sequence[ChangeRequest] = ()
    follow_up_group: str | None = None
    # Requests of records dead-lettered with this commit (their offsets are in positions).
    dead_letters: Sequence[DeadLettered] = ()
    # Partitions whose failure count (``RecordFailure``) this commit moves past: forgotten.
    cleared_failures: Sequence[int] = ()
    # The journal and rejections as rows, when the consumer decided them so: a store may
    # write these instead of reading the objects (which are then made for nothing).
    rows: DecidedRows | None = None
    # The holds the batch opened or changed, as they stand after it (``holds`` table).
    holds: Sequence[Hold] = ()


@dataclass(frozen=True, slots=True)
class UnsentRequest:
    """An outbox row still waiting for an outcome, as the sweep finds it."""

    stored: StoredRequest
    attempts: int
    updated_at_ms: int
    created_at_ms: int
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class LockToken:
    """A held leader lock: its epoch is the fencing token of the holder's writes."""

    name: str
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class LeaderLockRow:
    """A leader lock (or read fence) as the store holds it, for operators: who has it and
    for how much longer, by the database clock (``expires_in_ms`` <= 0: free to take)."""

    name: str
    owner: str
    epoch: int
    expires_in_ms: int


@dataclass(frozen=True, slots=True)
class ShardIdentity:
    """A database's place in the shard map, as ``migrate`` records it in the database."""

    shard_id: int
    shard_count: int
    partition_count: int

    def differences(self, configured: ShardIdentity) -> list[str]:
        """What the configuration says differently from this record, one phrase each."""
        return [
            f"{name} is {mine} here but {theirs} in the configuration"
            for name, mine, theirs in (
                ("shard_id", self.shard_id, configured.shard_id),
                ("shard_count", self.shard_count, configured.shard_count),
                ("partition_count", self.partition_count, configured.partition_count),
            )
            if mine != theirs
        ]


# Given the already stored requests among the candidates, returns those to insert.
ChooseNew = Callable[[Mapping[str, StoredRequest]], Sequence[ChangeRequest]]


class Store(Protocol):
    """Durable state of ledgerd."""

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to run at every start, and when
        several processes start at once.

        Raises:
            SchemaTooNew: the database was migrated by a newer ledgerd.
        """

    def schema_version(self) -> int:
        """The schema version recorded in the database; 0 before the first migrate."""

    def ping(self) -> None:
        """Check the database answers, and would take a write now.

        Raises:
            StoreReadOnly: it answers reads but refuses writes (a read-only or failed-over
                database, writes stopped after an I/O error on the embedded store).
            StoreUnavailable: it does not answer.
        """

    def close(self) -> None:
        """Release connections; idempotent."""

    def message_key(self) -> bytes:
        """The secret that signs the outbox's log messages (created by ``migrate``), shared
        by every process of the deployment through the store."""

    # -- outbox ---------------------------------------------------------------
    def accept_requests(
        self,
        request_ids: Collection[str],
        choose_new: ChooseNew,
        now_ms: int,
        group_id: str | None = None,
        *,
        new_group: bool = True,
    ) -> Mapping[str, StoredRequest]:
        """In one transaction, insert the PENDING rows ``choose_new`` picks given the stored
        requests among ``request_ids``, and commit; returns the stored ones it was given.

        ``choose_new`` may be called more than once; only what its last call picks is
        stored, and that call was given every stored request among the ids. (A store may
        first call it with none stored, insert what it picks, and keep that only if none
        of the ids turns out to be stored: one statement instead of a read before it.)

        ``group_id`` (unique, chosen by the caller) makes the new rows part of a publish
        group: a row in ``publish_groups`` says the group may not be in the log yet,
        until ``delete_groups`` says it is. Without one, the rows count as unpublished.
        The row is written with the group's first rows; ``new_group=False`` says an
        earlier acceptance committed it (a group spanning several acceptances).

        A request reads with its outcome: APPLIED from its journal entry, REJECTED from
        its rejection record, whether or not its outbox row is still there, so
        idempotency outlives the outbox.

        Raises:
            TransientStoreError: another writer inserted one of the ids meanwhile.
        """

    def get_requests(self, request_ids: Collection[str]) -> Mapping[str, StoredRequest]:
        """The stored requests among ``request_ids``, with their outcomes (as above)."""

    def delete_groups(self, group_ids: Collection[str]) -> None:
        """These publish groups are in the log (every message delivered or marked FAILED)."""

    def delete_requests(self, request_ids: Collection[str]) -> None:
        """Delete these outbox rows: a transfer's later legs, once in the log (their
        outcome may be recorded in another shard, so no local outcome would finish them)."""

    def delete_stale_groups(
        self, created_before_ms: int, keep: Collection[str], lock: LockToken
    ) -> int:
        """Forget publish groups created before the time, except ``keep``, only while
        ``lock`` is held: the sweep has published again every row it found in them.

        Raises:
            Fenced: the lock expired or moved to another owner; nothing was deleted.
        """

    def decided_requests(self, request_ids: Collection[str]) -> Collection[str]:
        """The ids among ``request_ids`` that have an outcome (journaled or rejected): two
        index-only lookups, for the consumer's checks."""

    def mark_sent(self, request_ids: Collection[str], now_ms: int) -> None:
        """Outbox rows the sweep published again: SENT, one more attempt counted."""

    def mark_failed(self, request_ids: Collection[str], now_ms: int) -> None:
        """Outbox rows whose publication failed: FAILED, one more attempt counted."""

    def find_unsent(self, created_before_ms: int, limit: int) -> Sequence[UnsentRequest]:
        """Outbox rows without an outcome that may not be in the log: PENDING ones created
        before the time whose publish group is not known to be published (or that have
        none), and every FAILED one; oldest first."""

    def count_unfinished(self) -> Mapping[ChangeStatus, int]:
        """Outbox rows without an outcome (requests in flight), by outbox status."""

    def oldest_unfinished_ms(self) -> int | None:
        """When the oldest outbox row without an outcome was created, whatever its status
        (None when every row has one)."""

    def delete_finished_requests(self, created_before_ms: int, limit: int, lock: LockToken) -> int:
        """Delete up to ``limit`` outbox rows created before the time that have an
        outcome (their journal entry or rejection answers for them from then on), only
        while ``lock`` is still held (checked inside the transaction). ``commit_batch``
        deletes the rows it decides: this finds the rows earlier versions left.

        Raises:
            Fenced: the lock expired or moved to another owner; nothing was deleted.
        """

    # -- leader locks (times by the database clock) ---------------------------
    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        """Take the lock if it is free or expired; the new epoch, or None if held."""

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        """Extend a held lock; False if it expired or another owner has it."""

    def release_lock(self, token: LockToken) -> None:
        """Give the lock up now, if still held by this token."""

    def leader_locks(self) -> list[LeaderLockRow]:
        """Every leader lock and read fence row, by name (the operator's page shows them)."""

    # -- read fences: a leader_locks row whose epoch is a generation and whose expiry is a
    # read lease (``ledgerd.cache.fence``) -----------------------------------------------
    def raise_fence(self, name: str) -> int:
        """Start a new generation, so no lease is granted for an older one again; returns the
        milliseconds (database clock) until the lease granted last runs out (0 if it has)."""

    def fence_generation(self, name: str) -> int:
        """The fence's current generation (0 before any was raised)."""

    def grant_lease(self, name: str, generation: int, ttl_ms: int) -> bool:
        """Extend the fence's lease to ``ttl_ms`` from now if its generation is still
        ``generation``; False if a newer one was raised."""

    # -- consumer -------------------------------------------------------------
    def claim_partition(self, topic: str, partition: int, topic_id: str = "") -> PartitionClaim:
        """Take ownership of a partition: bump its epoch, return where to resume and the
        newest stamp recorded (``commit_batch`` records each batch's ``applied_at_ms``).

        ``topic_id`` (the log's topic incarnation now) is recorded if the position has
        none yet; the claim returns the recorded one, for the caller to compare.
        """

    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        """Balances of the accounts that have one: each account's newest journal entry."""

    def load_holds(self, holds: Collection[tuple[int, str]]) -> Mapping[str, Hold]:
        """The stored holds among (holder user id, hold id) pairs, by hold id."""

    def due_holds(self, now_ms: int, limit: int) -> Sequence[Hold]:
        """Open holds whose expiry is at or before ``now_ms``, the earliest first (at most
        ``limit``; a sharded store: at most ``limit`` per shard)."""

    def scan_holds(self, after: str | None, limit: int) -> Sequence[Hold]:
        """Every hold, by hold id, after ``after`` (the audit's pass)."""

    def commit_batch(self, batch: BatchCommit) -> None:
        """Write balances, journal, rejections and partition offsets atomically, and
        delete the outbox rows of the requests the batch decided.

        Raises:
            TransientStoreError: among others, a request of the batch already has an
                outcome (a unique key); nothing was written, and the consumer decides
                the batch again reading every request's outcome.
            StoreRejected: the database refuses some values of the batch, and always
                will; nothing was written (the consumer looks for the record).
            Fenced: a position's epoch is no longer current, or it would move a stored
                offset backwards; nothing was written.
        """

    def count_record_failure(
        self, topic: str, partition: int, offset: int, error: str, now_ms: int
    ) -> int:
        """One more failure to decide the record at ``offset``; returns its count so far
        (1 when the partition's last count was for another record)."""

    def record_failures(self, topic: str) -> Sequence[RecordFailure]:
        """The failure counts kept, one per partition at most."""

    # -- reads ----------------------------------------------------------------
    def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        """The user's balance in one currency, or in all (``None``)."""

    def get_journal(
        self, user_id: int, currency: str, after_version: int, limit: int
    ) -> Sequence[JournalEntry]:
        """Journal entries of an account with version > after_version, ascending."""

    def get_journal_entries(self, request_ids: Collection[str]) -> Mapping[str, JournalEntry]:
        """The journal entries written by these requests, by request_id."""

    def journal_version_before(self, user_id: int, currency: str, before_ms: int) -> int:
        """The account's version just before the moment ``before_ms``: the version below its
        first entry applied at or after that moment, or its latest version when there is
        none (0: untouched then).

        A cut in version order, so balances and statements built on it add up exactly. An
        account's stamps never fall as its versions rise (``PartitionClaim.stamped_at_ms``;
        schema 13 made the older entries so), which the lookup may rely on.
        """

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        """The partition's journal entries with event_seq > after_seq, in event_seq order
        (entries journaled before schema 5 have event_seq 0 and are never listed)."""

    def get_positions(self, topic: str) -> Mapping[int, int]:
        """Next offset to apply, by partition (what has been committed)."""

    def last_applied_at_ms(self) -> int | None:
        """When the newest journal entry was applied (None while the journal is empty)."""

    # -- audit scans (keyset pagination, stable order) ------------------------
    def snapshot(self) -> AbstractContextManager[None]:
        """Reads by this thread inside the block see one consistent state."""

    def scan_balances(self, after: Account | None, limit: int) -> Sequence[Balance]:
        """Balances ordered by (user_id, currency), after the given account."""

    def scan_journal(
        self, after: tuple[int, str, int] | None, limit: int
    ) -> Sequence[JournalEntry]:
        """Journal ordered by (user_id, currency, version), after the given key."""

    def scan_requests(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        """Outbox rows ordered by request_id, after the given one (their outbox status)."""

    def scan_rejections(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        """Rejection records ordered by request_id, after the given one."""
