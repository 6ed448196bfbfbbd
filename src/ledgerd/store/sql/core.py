"""The Store on any SQL engine: every statement and the write plan, once.

Cold statements take ``?`` parameters; the batch paths (accepting requests,
relay marks, consumer commits, balance loads) are built as text from
validated literals in ``statements``. What the engine forces comes from the
``Dialect``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

from ledgerd.domain.holds import Hold, HoldState
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    StoredRequest,
)
from ledgerd.errors import Fenced, StoreRejected, StoreUnavailable
from ledgerd.store.base import (
    BatchCommit,
    ChooseNew,
    LeaderLockRow,
    LockToken,
    PartitionClaim,
    RecordFailure,
    ShardIdentity,
    UnsentRequest,
)
from ledgerd.store.sql import rows, statements
from ledgerd.store.sql.dialect import Dialect, Row, Session
from ledgerd.store.sql.migrate import SchemaChange, current_version, migrate
from ledgerd.store.sql.rows import (
    BALANCE_COLUMNS,
    HOLD_COLUMNS,
    JOURNAL_ACTOR_COLUMNS,
    JOURNAL_COLUMNS,
    OUTBOX_INSERT_COLUMNS,
    REJECTION_AS_REQUEST,
    REQUEST_COLUMNS,
    UNSENT_COLUMNS,
)
from ledgerd.store.sql.schema import MIGRATIONS, SHARD_IDENTITY_VERSION, Migration
from ledgerd.store.sql.statements import KEYS_PER_STATEMENT, chunks, keys

_PENDING, _SENT, _FAILED = (
    int(ChangeStatus.PENDING),
    int(ChangeStatus.SENT),
    int(ChangeStatus.FAILED),
)
_FINAL = (int(ChangeStatus.APPLIED), int(ChangeStatus.REJECTED))
_MESSAGE_KEY = "log-message-key"
# Error texts kept in the store are cut to this many characters (the columns hold 1024).
ERROR_TEXT_MAX = 1000
# An outbox row has an outcome when its request is journaled or rejected (or, for rows
# written before schema 3, when its own status says so).
_HAS_OUTCOME = (
    "(EXISTS (SELECT 1 FROM journal j WHERE j.request_id = change_requests.request_id)"
    " OR EXISTS (SELECT 1 FROM rejections r WHERE r.request_id = change_requests.request_id)"
    f" OR change_requests.status IN ({_FINAL[0]}, {_FINAL[1]}))"
)


class _FoundStored(Exception):
    """An optimistic acceptance found a stored id: roll it back and decide on a read."""


_DEAD_LETTERED = (
    "EXISTS (SELECT 1 FROM dead_letters d WHERE d.request_id = change_requests.request_id)"
)


# The account's first version stamped at or after a moment, less one (docs/api.md, *Time*),
# by halving its versions in one statement: stamps never fall as versions rise
# (``PartitionClaim.stamped_at_ms``) and versions run 1.. without gaps (the audit checks
# both), so each step reads one key of journal_account, the middle version's, joined once
# and compared twice. The answer lies in [low, high] (high: the latest version + 1,
# "none"); a step keeps the half that holds it. An account of 200,000 versions: 0.4-0.7 ms
# on MariaDB at any moment (0.65-0.96 with the key read twice a step, in each CASE), against
# 3.1-3.9 ms for the same halving with a round trip per step (SQLite: 0.05-0.1 ms).
_VERSION_BEFORE = (
    "WITH RECURSIVE halves (low, high) AS ("
    " SELECT 1, COALESCE((SELECT MAX(version) FROM journal WHERE user_id = ? AND currency = ?),"
    " 0) + 1"
    " UNION ALL"
    " SELECT CASE WHEN middle.applied_at_ms >= ? THEN low ELSE middle.version + 1 END,"
    " CASE WHEN middle.applied_at_ms >= ? THEN middle.version ELSE high END"
    " FROM halves JOIN journal middle ON middle.user_id = ? AND middle.currency = ?"
    " AND middle.version = ((low + high) >> 1)"
    " WHERE low < high)"
    " SELECT MAX(low) - 1 FROM halves"
)


class SqlStore:
    """The Store interface on one SQL database.

    ``clock_ms`` replaces the database clock in the leader-lock statements;
    tests pass a clock they advance, to expire a lock without waiting for it.
    Production leaves it unset: every process then compares lock expiry
    against the one clock they share, the database's, so a process whose own
    clock runs slow or fast can neither keep a lock past its expiry nor take
    one early (docs/architecture.md §2: leader locks expire by the database clock).
    """

    def __init__(self, dialect: Dialect, *, clock_ms: Callable[[], int] | None = None) -> None:
        self._dialect = dialect
        self._clock_ms = clock_ms
        self._off = dialect.user_offset
        self._lock_keeper: SqlStore | None = None

    def fence_locks_with(self, keeper: SqlStore) -> None:
        """Leader locks live in ``keeper`` (shard 0 of a sharded store): the jobs a lock
        fences here check it there, just before their own transaction commits. Not
        atomic with it, unlike in one database: a job whose lock expires in between may
        still delete here; both such jobs (stale publish groups, finished outbox rows)
        delete only what another leader would delete too."""
        self._lock_keeper = keeper

    def check_lock(self, lock: LockToken) -> None:
        """Raises Fenced unless ``lock`` is held now."""
        with self._dialect.transaction() as session:
            self._check_lock(session, lock)

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def migrate(self) -> None:
        self.apply_migrations()
        # The first process to migrate draws the deployment's message key; the rest keep it.
        with self._dialect.transaction() as session:
            session.execute(
                "INSERT INTO secrets (name, value) VALUES (?, ?) "
                + self._dialect.on_conflict_ignore(["name"]),
                [_MESSAGE_KEY, secrets.token_hex(32)],
            )

    def message_key(self) -> bytes:
        with self._dialect.autocommit() as session:
            found = session.query("SELECT value FROM secrets WHERE name = ?", [_MESSAGE_KEY])
        if not found:
            raise StoreUnavailable("the store has no message key: run `ledgerd migrate`")
        return bytes.fromhex(found[0][0])

    def apply_migrations(self, migrations: Sequence[Migration] = MIGRATIONS) -> SchemaChange:
        """Apply the missing migrations (tests pass other lists: older or newer code).

        Raises:
            SchemaTooNew: the database was migrated by a newer ledgerd; nothing changed.
        """
        return migrate(self._dialect, migrations)

    def schema_version(self) -> int:
        return current_version(self._dialect)

    # -- the shard map (ledgerd.store.shards) ---------------------------------
    def count_rows(self) -> Mapping[str, int]:
        """Rows per table of the data a shard holds (``ledgerd shards``): a full count,
        an operator's command, not a hot path."""
        tables = ("journal", "rejections", "change_requests", "partition_offsets")
        with self._dialect.autocommit() as session:
            counts = {
                table: int(session.query(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in tables
            }
            # Accounts with a balance: each has journal entries (its newest is the balance).
            (accounts,) = session.query(
                "SELECT COUNT(*) FROM (SELECT user_id FROM journal GROUP BY user_id, currency) a"
            )
        return {"balances": int(accounts[0]), **counts}

    def shard_identity(self) -> ShardIdentity | None:
        """The place in the shard map this database records; None before one is recorded
        (or before the schema has the table)."""
        if self.schema_version() < SHARD_IDENTITY_VERSION:
            return None
        with self._dialect.autocommit() as session:
            found = session.query(
                "SELECT shard_id, shard_count, partition_count FROM shard_identity"
                " WHERE singleton = 0"
            )
        return ShardIdentity(*(int(v) for v in found[0])) if found else None

    def record_shard_identity(self, identity: ShardIdentity) -> ShardIdentity:
        """Record the place unless one is recorded already; returns the recorded one
        (the caller compares: a second process starting at once records nothing)."""
        with self._dialect.transaction() as session:
            session.execute(
                "INSERT INTO shard_identity"
                " (singleton, shard_id, shard_count, partition_count, recorded_at_ms)"
                " VALUES (0, ?, ?, ?, ?) " + self._dialect.on_conflict_ignore(["singleton"]),
                [
                    identity.shard_id,
                    identity.shard_count,
                    identity.partition_count,
                    int(time.time() * 1000),
                ],
            )
        recorded = self.shard_identity()
        assert recorded is not None  # just inserted, or there before
        return recorded

    def ping(self) -> None:
        self._dialect.ping()

    def close(self) -> None:
        self._dialect.close()

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
        # The common case first: every id is new. The insert itself finds the ids the
        # outbox holds; one index-only read finds those whose outbox row is gone (decided).
        # Any id found stored rolls that attempt back and the acceptance is decided again
        # below, on what is stored, exactly as if it had been read first.
        guess = choose_new({})
        if (
            guess
            and len(guess) == len(request_ids)
            and {r.request_id for r in guess} == set(request_ids)
        ):
            try:
                with self._dialect.transaction() as session:
                    self._insert_if_all_new(session, guess, now_ms, group_id, new_group)
            except _FoundStored:
                pass
            else:
                return {}
        with self._dialect.transaction() as session:
            existing = self._select_requests(session, list(request_ids))
            new = choose_new(existing)
            writes = self._open_group(session, new, now_ms, group_id, new_group)
            writes += statements.insert_requests(new, now_ms, group_id, self._dialect, session.text)
            # The writes and COMMIT in one round trip: nothing is checked between them.
            session.batch(writes, commit=True)
        return existing

    def _insert_if_all_new(
        self,
        session: Session,
        requests: Sequence[ChangeRequest],
        now_ms: int,
        group_id: str | None,
        new_group: bool,
    ) -> None:
        """Insert the rows, all of them new, and open the group: one round trip for the
        inserts, the outcome check and the group's row (the transaction's commit another).

        Raises:
            _FoundStored: an id is stored; the caller rolls back what was inserted.
            StoreRejected: the engine altered a value it would refuse in a plain INSERT.
        """
        dialect = self._dialect
        if dialect.binds_rows:
            # Bound, in process: the written count is known before the checks run.
            insert = dialect.insert_ignoring(
                statements.bound_insert("change_requests", OUTBOX_INSERT_COLUMNS), ["request_id"]
            )
            rows = statements.request_rows(requests, now_ms, group_id, dialect)
            if session.execute_rows(insert, rows) != len(requests):
                raise _FoundStored
            inserts, sizes = [], []
        else:
            inserts = [
                dialect.insert_ignoring(statement, ["request_id"])
                for statement in statements.insert_requests(
                    requests, now_ms, group_id, dialect, session.text
                )
            ]
            sizes = [len(chunk) for chunk in chunks(requests, statements.ROWS_PER_STATEMENT)]
        ids = [request.request_id for request in requests]
        # The ids once, as a table both lookups join (as decided_requests): MariaDB 2.4 µs
        # an id against 3.6 for the IN list written twice (new ids, 50k, a private database).
        checks = []
        for chunk in chunks(ids, KEYS_PER_STATEMENT):
            statements.check_keys(chunk)
            listed = "('" + "'),('".join(chunk) + "')"
            checks.append(
                f"WITH ids (id) AS (VALUES {listed})"
                " SELECT j.request_id FROM ids JOIN journal j ON j.request_id = ids.id"
                " UNION ALL"
                " SELECT r.request_id FROM ids JOIN rejections r ON r.request_id = ids.id LIMIT 1"
            )
        # The group's row goes with them: if any id is found stored, all of it rolls back.
        opened = self._open_group(session, requests, now_ms, group_id, new_group)
        outcomes = session.batch([*inserts, *checks, *opened])
        for outcome, size in zip(outcomes, sizes, strict=False):
            if outcome.affected != size:
                raise _FoundStored
            if outcome.warnings:
                # Every row written, yet a warning: a value INSERT IGNORE altered.
                raise StoreRejected("INSERT IGNORE altered a value of change_requests")
        if any(outcome.rows for outcome in outcomes[len(inserts) : len(inserts) + len(checks)]):
            raise _FoundStored

    @staticmethod
    def _open_group(
        session: Session,
        new: Sequence[ChangeRequest],
        now_ms: int,
        group_id: str | None,
        new_group: bool,
    ) -> list[str]:
        """The statement that opens the publish group, if these rows need one."""
        if new and group_id is not None and new_group:
            return [
                "INSERT INTO publish_groups (group_id, created_at_ms)"
                f" VALUES ({statements.key(group_id)}, {int(now_ms)})"
            ]
        return []

    def decided_requests(self, request_ids: Collection[str]) -> Collection[str]:
        decided: set[str] = set()
        with self._dialect.autocommit() as session:
            # Unsorted: a read locks nothing. The ids once, as a table both lookups join:
            # MariaDB parsed an IN list written twice at about a third more per id.
            for chunk in chunks(list(request_ids), KEYS_PER_STATEMENT):
                statements.check_keys(chunk)
                listed = "('" + "'),('".join(chunk) + "')"
                decided.update(
                    row[0]
                    for row in session.query(
                        f"WITH ids (id) AS (VALUES {listed})"
                        " SELECT j.request_id FROM ids JOIN journal j ON j.request_id = ids.id"
                        " UNION ALL"
                        " SELECT r.request_id FROM ids JOIN rejections r ON r.request_id = ids.id"
                    )
                )
        return decided

    def delete_groups(self, group_ids: Collection[str]) -> None:
        if not group_ids:
            return
        with self._dialect.autocommit() as session:
            session.batch(
                [
                    f"DELETE FROM publish_groups WHERE group_id IN ({keys(chunk)})"
                    for chunk in chunks(sorted(group_ids), KEYS_PER_STATEMENT)
                ]
            )

    def delete_requests(self, request_ids: Collection[str]) -> None:
        if not request_ids:
            return
        with self._dialect.autocommit() as session:
            session.batch(statements.delete_requests(request_ids))

    def delete_stale_groups(
        self, created_before_ms: int, keep: Collection[str], lock: LockToken
    ) -> int:
        kept = set(keep)
        with self._dialect.transaction() as session:
            self._check_lock(session, lock)
            stale = [
                row[0]
                for row in session.query(
                    "SELECT group_id FROM publish_groups WHERE created_at_ms < ?",
                    [created_before_ms],
                )
                if row[0] not in kept
            ]
            session.batch(
                [
                    f"DELETE FROM publish_groups WHERE group_id IN ({keys(chunk)})"
                    for chunk in chunks(sorted(stale), KEYS_PER_STATEMENT)
                ],
                commit=True,
            )
        return len(stale)

    def _select_requests(self, session: Session, ids: Sequence[str]) -> dict[str, StoredRequest]:
        """The requests among ``ids``: outbox rows, with the outcome from the journal or
        the rejections (which also answer once the outbox row is gone)."""
        found = {
            row[0]: rows.stored_request(row, self._off)
            for row in _rows_by_request_id(session, "change_requests", REQUEST_COLUMNS, ids)
        }
        found.update(
            (rid, entry.as_stored_request())
            for rid, entry in self._select_journal(session, ids).items()
        )
        found.update(
            (row[0], rows.stored_request(row, self._off))
            for row in _rows_by_request_id(session, "rejections", REJECTION_AS_REQUEST, ids)
        )
        # Only requests still without an outcome can have been dead-lettered: a new request
        # (the acceptor's common case) or a decided one costs no look here.
        waiting = [rid for rid, stored in found.items() if not stored.status.is_final]
        if waiting:
            for (rid,) in _rows_by_request_id(session, "dead_letters", "request_id", waiting):
                found[rid] = replace(found[rid], status=ChangeStatus.FAILED)
        return found

    def _select_journal(self, session: Session, ids: Sequence[str]) -> dict[str, JournalEntry]:
        return {
            row[0]: rows.journal_entry(row, self._off)
            for row in _rows_by_request_id(session, "journal", JOURNAL_ACTOR_COLUMNS, ids)
        }

    def get_requests(self, request_ids: Collection[str]) -> Mapping[str, StoredRequest]:
        if not request_ids:
            return {}
        with self._dialect.autocommit() as session:
            return self._select_requests(session, list(request_ids))

    def mark_sent(self, request_ids: Collection[str], now_ms: int) -> None:
        self._update_unsent(
            request_ids,
            f"status = {_SENT}, attempts = attempts + 1, sent_at_ms = {now_ms},"
            f" updated_at_ms = {now_ms}",
        )

    def mark_failed(self, request_ids: Collection[str], now_ms: int) -> None:
        self._update_unsent(
            request_ids,
            f"status = {_FAILED}, attempts = attempts + 1, updated_at_ms = {now_ms}",
        )

    def _update_unsent(self, request_ids: Collection[str], assignments: str) -> None:
        if not request_ids:
            return
        # Each chunk commits on its own: a relay mark is idempotent, and short.
        with self._dialect.autocommit() as session:
            session.batch(list(statements.update_unsent(request_ids, assignments)))

    def find_unsent(self, created_before_ms: int, limit: int) -> Sequence[UnsentRequest]:
        columns = f"{REQUEST_COLUMNS}, {UNSENT_COLUMNS}"
        pending = (
            f"status = {_PENDING} AND created_at_ms < ? AND (group_id IS NULL OR EXISTS"
            " (SELECT 1 FROM publish_groups g WHERE g.group_id = change_requests.group_id))"
        )
        # A dead-lettered request was in the log (a delivery reported failed may still have
        # landed): publishing it again would only dead-letter it again. One scan of the
        # rows in flight (the outbox holds no others, and has no status index).
        scan = (
            f"SELECT {columns} FROM change_requests WHERE (({pending}) OR status = {_FAILED})"
            f" AND NOT {_HAS_OUTCOME} AND NOT {_DEAD_LETTERED} ORDER BY created_at_ms LIMIT ?"
        )
        with self._dialect.autocommit() as session:
            found = session.query(scan, [created_before_ms, limit])
            # The legs of an atomic group go out as one message: the limit must not cut one.
            groups = sorted({row[15] for row in found if row[15]} - {""})
            seen = {row[0] for row in found}
            for chunk in chunks(groups, KEYS_PER_STATEMENT):
                found += [
                    row
                    for row in session.query(
                        f"SELECT {columns} FROM change_requests"
                        f" WHERE atomic_group IN ({keys(chunk)})"
                    )
                    if row[0] not in seen
                ]
        found.sort(key=lambda row: (int(row[13]), row[15], int(row[16])))
        return [
            UnsentRequest(
                rows.stored_request(
                    row, self._off, row[15], int(row[16]), row[17], expires_at_ms=int(row[18] or 0)
                ),
                int(row[11]),
                int(row[12]),
                int(row[13]),
                row[14],
            )
            for row in found
        ]

    def count_unfinished(self) -> Mapping[ChangeStatus, int]:
        counts = {ChangeStatus(s): 0 for s in (_PENDING, _SENT, _FAILED)}
        with self._dialect.autocommit() as session:
            for status, count in session.query(
                "SELECT status, COUNT(*) FROM change_requests WHERE status IN (?, ?, ?)"
                f" AND NOT {_HAS_OUTCOME} GROUP BY status",
                [_PENDING, _SENT, _FAILED],
            ):
                counts[ChangeStatus(status)] = int(count)
        return counts

    def oldest_unfinished_ms(self) -> int | None:
        with self._dialect.autocommit() as session:
            found = session.query(
                "SELECT MIN(created_at_ms) FROM change_requests WHERE status IN (?, ?, ?)"
                f" AND NOT {_HAS_OUTCOME}",
                [_PENDING, _SENT, _FAILED],
            )
        return None if not found or found[0][0] is None else int(found[0][0])

    def delete_finished_requests(self, created_before_ms: int, limit: int, lock: LockToken) -> int:
        # Read the ids first (a consistent read takes no locks), then delete by primary key:
        # a DELETE … WHERE EXISTS would lock the journal and rejection entries it reads,
        # and the consumer's inserts next to them would wait for the sweep. Only rows an
        # earlier version left have an outcome: the consumer deletes a row with its outcome.
        with self._dialect.transaction() as session:
            self._check_lock(session, lock)
            found = [
                row[0]
                for row in session.query(
                    "SELECT request_id FROM change_requests WHERE created_at_ms < ?"
                    f" AND {_HAS_OUTCOME} ORDER BY created_at_ms LIMIT ?",
                    [created_before_ms, limit],
                )
            ]
            session.batch(statements.delete_requests(found), commit=True)
        return len(found)

    # -- leader locks (times by the database clock unless a test clock is set) -
    def _now_ms(self) -> str:
        if self._clock_ms is None:
            return self._dialect.db_now_ms
        return str(int(self._clock_ms()))

    def _check_lock(self, session: Session, lock: LockToken) -> None:
        if self._lock_keeper is not None:
            self._lock_keeper.check_lock(lock)
            return
        # A locking read where the engine needs one: a plain SELECT could read
        # the transaction's old snapshot.
        found = session.query(
            "SELECT 1 FROM leader_locks WHERE name = ? AND owner = ? AND epoch = ?"
            f" AND expires_at_ms > {self._now_ms()}{self._dialect.locking_read}",
            [lock.name, lock.owner, lock.epoch],
        )
        if not found:
            raise Fenced(f"leader lock {lock.name}")

    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        now = self._now_ms()
        with self._dialect.transaction() as session:
            session.execute(
                "INSERT INTO leader_locks (name, owner, epoch, expires_at_ms) VALUES (?, '', 0, 0) "
                + self._dialect.on_conflict_ignore(["name"]),
                [name],
            )
            taken = session.execute(
                f"UPDATE leader_locks SET owner = ?, epoch = epoch + 1, expires_at_ms = {now} + ?"
                f" WHERE name = ? AND expires_at_ms <= {now}",
                [owner, ttl_ms, name],
            )
            if taken != 1:
                return None
            ((epoch,),) = session.query("SELECT epoch FROM leader_locks WHERE name = ?", [name])
        return int(epoch)

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        now = self._now_ms()
        with self._dialect.autocommit() as session:
            renewed = session.execute(
                f"UPDATE leader_locks SET expires_at_ms = {now} + ?"
                f" WHERE name = ? AND owner = ? AND epoch = ? AND expires_at_ms > {now}",
                [ttl_ms, token.name, token.owner, token.epoch],
            )
        return renewed == 1

    def leader_locks(self) -> list[LeaderLockRow]:
        now = self._now_ms()
        with self._dialect.autocommit() as session:
            rows = session.query(
                f"SELECT name, owner, epoch, expires_at_ms - {now} FROM leader_locks ORDER BY name"
            )
        return [LeaderLockRow(str(n), str(o), int(e), int(left)) for n, o, e, left in rows]

    def release_lock(self, token: LockToken) -> None:
        with self._dialect.autocommit() as session:
            session.execute(
                "UPDATE leader_locks SET expires_at_ms = 0"
                " WHERE name = ? AND owner = ? AND epoch = ?",
                [token.name, token.owner, token.epoch],
            )

    # -- read fences (rows of leader_locks: epoch = generation, expiry = lease) ---
    def _ensure_lock_row(self, session: Session, name: str) -> None:
        session.execute(
            "INSERT INTO leader_locks (name, owner, epoch, expires_at_ms) VALUES (?, '', 0, 0) "
            + self._dialect.on_conflict_ignore(["name"]),
            [name],
        )

    def raise_fence(self, name: str) -> int:
        now = self._now_ms()
        with self._dialect.transaction() as session:
            self._ensure_lock_row(session, name)
            session.execute("UPDATE leader_locks SET epoch = epoch + 1 WHERE name = ?", [name])
            ((remaining,),) = session.query(
                f"SELECT expires_at_ms - {now} FROM leader_locks WHERE name = ?", [name]
            )
        return max(0, int(remaining))

    def fence_generation(self, name: str) -> int:
        with self._dialect.autocommit() as session:
            found = session.query("SELECT epoch FROM leader_locks WHERE name = ?", [name])
        return int(found[0][0]) if found else 0

    def grant_lease(self, name: str, generation: int, ttl_ms: int) -> bool:
        now = self._now_ms()
        with self._dialect.transaction() as session:
            self._ensure_lock_row(session, name)
            # Locked first, so a concurrent raise either precedes this (and refuses it) or
            # follows it (and reads the expiry this sets).
            found = session.query(
                f"SELECT epoch FROM leader_locks WHERE name = ?{self._dialect.locking_read}",
                [name],
            )
            if int(found[0][0]) != generation:
                return False
            session.execute(
                f"UPDATE leader_locks SET expires_at_ms = {now} + ? WHERE name = ?", [ttl_ms, name]
            )
        return True

    # -- consumer -------------------------------------------------------------
    def claim_partition(self, topic: str, partition: int, topic_id: str = "") -> PartitionClaim:
        keys_ = ["topic", "partition_id"]
        proposed = self._dialect.excluded("topic_id")
        with self._dialect.transaction() as session:
            session.execute(
                "INSERT INTO partition_offsets (topic, partition_id, next_offset, epoch, topic_id)"
                " VALUES (?, ?, 0, 1, ?) "
                + self._dialect.on_conflict_update(
                    keys_,
                    # A recorded topic id stays: the caller compares it with the log's.
                    "epoch = epoch + 1, topic_id = CASE WHEN topic_id = ''"
                    f" THEN {proposed} ELSE topic_id END",
                ),
                [topic, partition, topic_id],
            )
            ((next_offset, epoch, recorded),) = session.query(
                "SELECT next_offset, epoch, topic_id FROM partition_offsets"
                " WHERE topic = ? AND partition_id = ?",
                [topic, partition],
            )
            stamped_at_ms = self._newest_stamp(session)
        return PartitionClaim(
            topic, partition, int(epoch), int(next_offset), str(recorded), stamped_at_ms
        )

    def newest_stamp_ms(self) -> int:
        """The newest batch stamp recorded over every partition (0: none yet)."""
        with self._dialect.autocommit() as session:
            return self._newest_stamp(session)

    @staticmethod
    def _newest_stamp(session: Session) -> int:
        found = session.query("SELECT MAX(stamped_at_ms) FROM partition_offsets", [])
        newest = found[0][0] if found else None
        return 0 if newest is None else int(newest)

    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        found: dict[Account, Balance] = {}
        # Each account's newest journal entry, by currency: the user ids as a table, each
        # joined to the entry its newest version names. That version is one step down
        # journal_account (ORDER BY version DESC LIMIT 1) however long the history: MAX()
        # with GROUP BY read every entry of an account on MariaDB unless its history was
        # long (apply-large, 50 entries an account: MariaDB 45 µs a change, apply's 22). Its
        # CPU here (100,000 accounts of 5 entries; 100 and 5,000 a statement): 2-4 µs an
        # account with no entry, 9-18 with entries, against 1.4-4 and 2.4-6.6 from the balance
        # rows this replaced; an account is read once, then kept.
        users_by_currency: dict[str, list[int]] = {}
        for account in accounts:
            users_by_currency.setdefault(account.currency, []).append(account.user_id)
        statements.check_keys(list(users_by_currency))
        off = self._off
        with self._dialect.autocommit() as session:
            for currency, users in sorted(users_by_currency.items()):
                for chunk in chunks(sorted(users), KEYS_PER_STATEMENT):
                    listed = "),(".join(str(user - off) for user in chunk)
                    for row in session.query(
                        f"WITH a (user_id) AS (VALUES ({listed}))"
                        f" SELECT {BALANCE_COLUMNS} FROM a JOIN journal j"
                        f" ON j.user_id = a.user_id AND j.currency = '{currency}'"
                        " AND j.version = (SELECT k.version FROM journal k"
                        f" WHERE k.user_id = a.user_id AND k.currency = '{currency}'"
                        " ORDER BY k.version DESC LIMIT 1)"
                    ):
                        balance = rows.balance(row, off)
                        found[balance.account] = balance
        return found

    def load_holds(self, holds: Collection[tuple[int, str]]) -> Mapping[str, Hold]:
        wanted = sorted({hold_id for _, hold_id in holds})
        found: dict[str, Hold] = {}
        with self._dialect.autocommit() as session:
            for chunk in chunks(wanted, KEYS_PER_STATEMENT):
                for row in session.query(
                    f"SELECT {HOLD_COLUMNS} FROM holds WHERE hold_id IN ({keys(chunk)})"
                ):
                    hold = rows.hold(row, self._off)
                    found[hold.hold_id] = hold
        return found

    def due_holds(self, now_ms: int, limit: int) -> Sequence[Hold]:
        with self._dialect.autocommit() as session:
            found = session.query(
                f"SELECT {HOLD_COLUMNS} FROM holds WHERE state = ? AND expires_at_ms <= ?"
                " ORDER BY expires_at_ms LIMIT ?",
                [int(HoldState.OPEN), now_ms, limit],
            )
        return [rows.hold(row, self._off) for row in found]

    def scan_holds(self, after: str | None, limit: int) -> Sequence[Hold]:
        with self._dialect.autocommit() as session:
            found = session.query(
                f"SELECT {HOLD_COLUMNS} FROM holds WHERE hold_id > ? ORDER BY hold_id LIMIT ?",
                [after or "", limit],
            )
        return [rows.hold(row, self._off) for row in found]

    def commit_batch(self, batch: BatchCommit) -> None:
        dialect = self._dialect
        with dialect.transaction() as session:
            # Never backwards: a lower offset would apply records a second time
            # (the journal's unique request_id would refuse them, the offset stays).
            # The compare-and-sets first, in one round trip (with the transaction's begin),
            # so a fenced consumer writes nothing else.
            # Each records the batch's stamp, never a lower one than it holds: the next
            # claimer stamps no batch earlier (``PartitionClaim.stamped_at_ms``).
            stamp = int(batch.applied_at_ms)
            moves = [
                f"UPDATE partition_offsets SET next_offset = {int(position.next_offset)},"
                f" stamped_at_ms = CASE WHEN stamped_at_ms < {stamp} THEN {stamp}"
                " ELSE stamped_at_ms END"
                f" WHERE topic = {statements.key(position.topic)}"
                f" AND partition_id = {int(position.partition)}"
                f" AND epoch = {int(position.epoch)}"
                f" AND next_offset <= {int(position.next_offset)}"
                for position in batch.positions
            ]
            for position, moved in zip(batch.positions, session.batch(moves), strict=True):
                if moved.affected != 1:
                    raise Fenced(
                        f"partition {position.topic}/{position.partition}", position.partition
                    )
            if batch.dead_letters or batch.cleared_failures:
                self._write_dead_letters(session, batch)
            # No balance row: an account's balance is its newest journal entry.
            writes = list(self._journal_and_rejections(session, batch))
            if batch.holds:
                hold_upsert = dialect.on_conflict_update(
                    ["hold_id"],
                    ", ".join(
                        f"{c} = {dialect.excluded(c)}"
                        for c in ("captured", "state", "updated_at_ms")
                    ),
                )
                writes += statements.upsert_holds(batch.holds, dialect, hold_upsert)
            if batch.follow_ups:
                # A transfer's next leg, in the outbox of the shard that decided the one
                # before, in the same transaction: exactly one credit per applied debit.
                assert batch.follow_up_group is not None  # set with follow-ups
                writes.append(
                    "INSERT INTO publish_groups (group_id, created_at_ms) VALUES"
                    f" ({statements.key(batch.follow_up_group)}, {int(batch.applied_at_ms)})"
                )
                writes += statements.insert_requests(
                    batch.follow_ups,
                    batch.applied_at_ms,
                    batch.follow_up_group,
                    dialect,
                    session.text,
                )
            # The decided requests leave the outbox with their outcomes: deleted by key
            # here, their rows never pile up for the sweep to find with two outcome
            # lookups a row (change-batch over 60 s, old tree against new in one sitting:
            # 226 -> 208 µs a change, MariaDB 117 -> 93).
            writes += statements.delete_requests(_decided_ids(batch))
            # Nothing is checked after the writes: COMMIT goes with them, one round trip.
            session.batch(writes, commit=True)

    def _journal_and_rejections(self, session: Session, batch: BatchCommit) -> Iterator[str]:
        """The batch's journal and rejection INSERTs (a bulk-loaded journal is written
        here); from its rows when the consumer decided it as rows."""
        dialect, decided = self._dialect, batch.rows
        if dialect.bulk_load and batch.journal:
            columns = JOURNAL_COLUMNS
            if decided is None:
                journal = [statements.journal_values(e, dialect) for e in batch.journal]
                if any(e.actor or e.hold_id for e in batch.journal):
                    columns = JOURNAL_ACTOR_COLUMNS
                    journal = [
                        [*row, e.actor, e.hold_id]
                        for row, e in zip(journal, batch.journal, strict=True)
                    ]
            else:
                journal = [statements.journal_row_values(row, dialect) for row in decided.journal]
            dialect.bulk_insert(session, "journal", columns, journal)
        elif decided is None:
            yield from statements.insert_journal(batch.journal, dialect, session.text)
        else:
            yield from statements.insert_journal_rows(decided.journal, dialect, session.text)
        if decided is None:
            yield from statements.insert_rejections(
                batch.rejections, batch.applied_at_ms, dialect, session.text
            )
        else:
            yield from statements.insert_rejection_rows(
                decided.rejections, batch.applied_at_ms, dialect, session.text
            )

    def _write_dead_letters(self, session: Session, batch: BatchCommit) -> None:
        """A commit's dead letters, and the failure counts of records it moves past (rare:
        statements with parameters, one per row)."""
        columns = ("topic", "partition_id", "log_offset", "reason", "error", "dead_lettered_at_ms")
        again = self._dialect.on_conflict_update(
            ["request_id"], ", ".join(f"{c} = {self._dialect.excluded(c)}" for c in columns)
        )
        for letter in batch.dead_letters:
            session.execute(
                f"INSERT INTO dead_letters (request_id, {', '.join(columns)})"
                f" VALUES (?, ?, ?, ?, ?, ?, ?) {again}",
                [
                    letter.request_id, letter.topic, letter.partition, letter.offset,
                    letter.reason, letter.error[:ERROR_TEXT_MAX], batch.applied_at_ms,
                ],
            )  # fmt: skip
        next_offsets = {p.partition: (p.topic, p.next_offset) for p in batch.positions}
        for partition in batch.cleared_failures:
            if partition in next_offsets:
                topic, next_offset = next_offsets[partition]
                session.execute(
                    "DELETE FROM record_failures"
                    " WHERE topic = ? AND partition_id = ? AND log_offset < ?",
                    [topic, partition, next_offset],
                )

    def count_record_failure(
        self, topic: str, partition: int, offset: int, error: str, now_ms: int
    ) -> int:
        with self._dialect.transaction() as session:
            found = session.query(
                "SELECT log_offset, attempts FROM record_failures"
                f" WHERE topic = ? AND partition_id = ?{self._dialect.locking_read}",
                [topic, partition],
            )
            same = bool(found) and int(found[0][0]) == offset
            attempts = int(found[0][1]) + 1 if same else 1
            columns = ("log_offset", "attempts", "error", "updated_at_ms")
            session.execute(
                "INSERT INTO record_failures (topic, partition_id, log_offset, attempts, error,"
                " updated_at_ms) VALUES (?, ?, ?, ?, ?, ?) "
                + self._dialect.on_conflict_update(
                    ["topic", "partition_id"],
                    ", ".join(f"{c} = {self._dialect.excluded(c)}" for c in columns),
                ),
                [topic, partition, offset, attempts, error[:ERROR_TEXT_MAX], now_ms],
            )
        return attempts

    def record_failures(self, topic: str) -> Sequence[RecordFailure]:
        with self._dialect.autocommit() as session:
            found = session.query(
                "SELECT partition_id, log_offset, attempts FROM record_failures WHERE topic = ?"
                " ORDER BY partition_id",
                [topic],
            )
        return [RecordFailure(int(p), int(o), int(a)) for p, o, a in found]

    # -- reads ----------------------------------------------------------------
    def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        where = "user_id = ?"
        params: list[object] = [user_id - self._off]
        if currency is not None:
            where += " AND currency = ?"
            params.append(currency)
        with self._dialect.autocommit() as session:
            found = session.query(
                _NEWEST_ENTRIES.format(condition=f"WHERE {where}", page="")
                + " ORDER BY j.currency",
                params,
            )
        return [rows.balance(row, self._off) for row in found]

    def get_journal(
        self, user_id: int, currency: str, after_version: int, limit: int
    ) -> Sequence[JournalEntry]:
        with self._dialect.autocommit() as session:
            found = session.query(
                f"SELECT {JOURNAL_ACTOR_COLUMNS} FROM journal WHERE user_id = ? AND currency = ?"
                " AND version > ? ORDER BY version LIMIT ?",
                [
                    user_id - self._off,
                    currency,
                    min(after_version, self._dialect.max_integer),
                    limit,
                ],
            )
        return [rows.journal_entry(row, self._off) for row in found]

    def get_journal_entries(self, request_ids: Collection[str]) -> Mapping[str, JournalEntry]:
        if not request_ids:
            return {}
        with self._dialect.autocommit() as session:
            return self._select_journal(session, list(request_ids))

    def journal_version_before(self, user_id: int, currency: str, before_ms: int) -> int:
        account = [user_id - self._off, currency]
        with self._dialect.autocommit() as session:
            found = session.query(_VERSION_BEFORE, [*account, before_ms, before_ms, *account])
        return int(found[0][0])

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        with self._dialect.autocommit() as session:
            found = session.query(
                f"SELECT {JOURNAL_ACTOR_COLUMNS} FROM journal"
                " WHERE partition_id = ? AND event_seq > ? ORDER BY event_seq LIMIT ?",
                [partition, after_seq, limit],
            )
        return [rows.journal_entry(row, self._off) for row in found]

    def get_positions(self, topic: str) -> Mapping[int, int]:
        with self._dialect.autocommit() as session:
            found = session.query(
                "SELECT partition_id, next_offset FROM partition_offsets WHERE topic = ?", [topic]
            )
        return {int(row[0]): int(row[1]) for row in found}

    def last_applied_at_ms(self) -> int | None:
        with self._dialect.autocommit() as session:
            found = session.query("SELECT MAX(applied_at_ms) FROM journal", [])
        newest = found[0][0] if found else None
        return None if newest is None else int(newest)

    # -- audit scans ----------------------------------------------------------
    def snapshot(self) -> AbstractContextManager[None]:
        return self._dialect.snapshot()

    def scan_balances(self, after: Account | None, limit: int) -> Sequence[Balance]:
        condition, params = "", []
        if after is not None:
            # The leading user_id bound makes this a range scan on MariaDB, which otherwise
            # reads the index from its start for a row comparison: quadratic paging.
            condition = "WHERE user_id >= ? AND (user_id, currency) > (?, ?)"
            user_id = after.user_id - self._off
            params = [user_id, user_id, after.currency]
        with self._dialect.autocommit() as session:
            found = session.query(
                _NEWEST_ENTRIES.format(
                    condition=condition, page="ORDER BY user_id, currency LIMIT ?"
                )
                + " ORDER BY j.user_id, j.currency",
                [*params, limit],
            )
        return [rows.balance(row, self._off) for row in found]

    def scan_journal(
        self, after: tuple[int, str, int] | None, limit: int
    ) -> Sequence[JournalEntry]:
        condition, params = "", []
        if after is not None:
            condition = "WHERE user_id >= ? AND (user_id, currency, version) > (?, ?, ?)"
            user_id = after[0] - self._off
            params = [user_id, user_id, after[1], after[2]]  # a range scan: see scan_balances
        with self._dialect.autocommit() as session:
            found = session.query(
                f"SELECT {JOURNAL_ACTOR_COLUMNS} FROM journal {condition}"
                " ORDER BY user_id, currency, version LIMIT ?",
                [*params, limit],
            )
        return [rows.journal_entry(row, self._off) for row in found]

    def scan_requests(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        return self._scan_by_request_id("change_requests", REQUEST_COLUMNS, after, limit)

    def scan_rejections(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        return self._scan_by_request_id("rejections", REJECTION_AS_REQUEST, after, limit)

    def _scan_by_request_id(
        self, table: str, columns: str, after: str | None, limit: int
    ) -> Sequence[StoredRequest]:
        with self._dialect.autocommit() as session:
            found = session.query(
                f"SELECT {columns} FROM {table} WHERE request_id > ? ORDER BY request_id LIMIT ?",
                [after or "", limit],
            )
        return [rows.stored_request(row, self._off) for row in found]


# An account's balance is its newest journal entry (none: never changed, all zero), for
# the accounts of ``condition`` (a WHERE clause on journal rows, or none), ``page`` ending
# the grouped accounts (an ORDER BY and LIMIT, or nothing). MariaDB finds each account's
# MAX(version) by a loose index scan when its history is long, else reads its entries: for
# a user's few currencies (a read that missed the cache) and page scans.
_NEWEST_ENTRIES = (
    f"SELECT {BALANCE_COLUMNS}"
    " FROM journal j JOIN (SELECT user_id, currency, MAX(version) AS version FROM journal"
    " {condition} GROUP BY user_id, currency {page}) m"
    " ON j.user_id = m.user_id AND j.currency = m.currency AND j.version = m.version"
)


def _rows_by_request_id(
    session: Session, table: str, columns: str, ids: Sequence[str]
) -> Iterator[Row]:
    """Rows of ``table`` whose request_id is among ``ids`` (request_id first), chunked."""
    for chunk in chunks(ids, KEYS_PER_STATEMENT):
        yield from session.query(
            f"SELECT {columns} FROM {table} WHERE request_id IN ({keys(chunk)})"
        )


def _decided_ids(batch: BatchCommit) -> list[str]:
    """The request ids a batch records an outcome for (journal entry or rejection)."""
    if batch.rows is not None:
        return [row[0] for row in batch.rows.journal] + [row[0] for row in batch.rows.rejections]
    return [entry.request_id for entry in batch.journal] + [
        rejected.request.request_id for rejected in batch.rejections
    ]
