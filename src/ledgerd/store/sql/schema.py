"""The schema as numbered migrations, shared where the DDL can be, per engine where not.

History is append-only: a released step never changes, a new step follows it.
MySQL commits DDL implicitly, so a crash can leave a step half applied and
unrecorded; each MySQL statement is therefore idempotent (``IF NOT EXISTS``)
and the step simply runs again. SQLite runs the whole migration in one
transaction. Identifiers and request ids compare byte for byte on both
engines (ascii_bin on MySQL, SQLite's default BINARY): "A1" and "a1" differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step: ``shared`` statements, or the engine's own."""

    version: int
    description: str
    shared: Sequence[str] = ()
    by_dialect: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def statements(self, dialect_name: str) -> Sequence[str]:
        return self.by_dialect.get(dialect_name, self.shared)


_SQLITE_V1 = [
    """CREATE TABLE IF NOT EXISTS change_requests (
        request_id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL,
        currency TEXT NOT NULL,
        type INTEGER NOT NULL,
        amount TEXT NOT NULL,
        memo TEXT NOT NULL,
        status INTEGER NOT NULL,
        reject_reason INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        sent_at_ms INTEGER,
        applied_at_ms INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS change_requests_status ON change_requests (status, created_at_ms)",
    """CREATE TABLE IF NOT EXISTS balances (
        user_id INTEGER NOT NULL,
        currency TEXT NOT NULL,
        available TEXT NOT NULL,
        frozen TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (user_id, currency)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS journal (
        user_id INTEGER NOT NULL,
        currency TEXT NOT NULL,
        version INTEGER NOT NULL,
        request_id TEXT NOT NULL UNIQUE,
        type INTEGER NOT NULL,
        amount TEXT NOT NULL,
        available_after TEXT NOT NULL,
        frozen_after TEXT NOT NULL,
        applied_at_ms INTEGER NOT NULL,
        memo TEXT NOT NULL,
        PRIMARY KEY (user_id, currency, version)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS partition_offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    )""",
    """CREATE TABLE IF NOT EXISTS leader_locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    )""",
]

_MYSQL_V1 = [
    """CREATE TABLE IF NOT EXISTS change_requests (
        request_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        user_id BIGINT UNSIGNED NOT NULL,
        currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        type TINYINT UNSIGNED NOT NULL,
        amount DECIMAL(38,18) NOT NULL,
        memo VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        status TINYINT UNSIGNED NOT NULL,
        reject_reason TINYINT UNSIGNED NOT NULL DEFAULT 0,
        attempts INT UNSIGNED NOT NULL DEFAULT 0,
        created_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        sent_at_ms BIGINT NULL,
        applied_at_ms BIGINT NULL,
        PRIMARY KEY (request_id),
        KEY change_requests_status (status, created_at_ms)
    ) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS balances (
        user_id BIGINT UNSIGNED NOT NULL,
        currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        available DECIMAL(38,18) NOT NULL,
        frozen DECIMAL(38,18) NOT NULL,
        version BIGINT UNSIGNED NOT NULL,
        PRIMARY KEY (user_id, currency)
    ) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS journal (
        user_id BIGINT UNSIGNED NOT NULL,
        currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        version BIGINT UNSIGNED NOT NULL,
        request_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        type TINYINT UNSIGNED NOT NULL,
        amount DECIMAL(38,18) NOT NULL,
        available_after DECIMAL(38,18) NOT NULL,
        frozen_after DECIMAL(38,18) NOT NULL,
        applied_at_ms BIGINT NOT NULL,
        memo VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        PRIMARY KEY (user_id, currency, version),
        UNIQUE KEY journal_request_id (request_id)
    ) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS partition_offsets (
        topic VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        partition_id INT NOT NULL,
        next_offset BIGINT NOT NULL,
        epoch BIGINT NOT NULL,
        PRIMARY KEY (topic, partition_id)
    ) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS leader_locks (
        name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        owner VARCHAR(128) NOT NULL,
        epoch BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL,
        PRIMARY KEY (name)
    ) ENGINE=InnoDB""",
]

_MIGRATIONS_TO_V4: Sequence[Migration] = (
    Migration(1, "tables", by_dialect={"sqlite": _SQLITE_V1, "mysql": _MYSQL_V1}),
    # One column name on both engines; MySQL had it from the start.
    Migration(
        2,
        "partition_offsets.partition is partition_id",
        by_dialect={
            "sqlite": ["ALTER TABLE partition_offsets RENAME COLUMN partition TO partition_id"],
            "mysql": [],
        },
    ),
    # The lean apply path (docs/architecture.md §3): a rejection is recorded once, with
    # the request's fields, so the outbox row can go as soon as it has an outcome; each
    # group commit is one publish group, whose row goes once the group is in the log (one
    # write per group instead of a SENT update per row); and the key that signs the
    # outbox's log messages lives with the data it protects.
    Migration(
        3,
        "rejections, publish groups and secrets",
        by_dialect={
            "sqlite": [
                """CREATE TABLE IF NOT EXISTS rejections (
                    request_id TEXT PRIMARY KEY,
                    user_id INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    type INTEGER NOT NULL,
                    amount TEXT NOT NULL,
                    memo TEXT NOT NULL,
                    reject_reason INTEGER NOT NULL,
                    decided_at_ms INTEGER NOT NULL
                ) WITHOUT ROWID""",
                """CREATE TABLE IF NOT EXISTS secrets (
                    name TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                )""",
                """CREATE TABLE IF NOT EXISTS publish_groups (
                    group_id TEXT PRIMARY KEY,
                    created_at_ms INTEGER NOT NULL
                ) WITHOUT ROWID""",
                "ALTER TABLE change_requests ADD COLUMN group_id TEXT",
                # Rejections recorded the old way (on the outbox row) keep their outcome.
                """INSERT OR IGNORE INTO rejections
                    SELECT request_id, user_id, currency, type, amount, memo, reject_reason,
                           COALESCE(applied_at_ms, updated_at_ms)
                    FROM change_requests WHERE status = 4""",
            ],
            "mysql": [
                """CREATE TABLE IF NOT EXISTS rejections (
                    request_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    user_id BIGINT UNSIGNED NOT NULL,
                    currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    type TINYINT UNSIGNED NOT NULL,
                    amount DECIMAL(38,18) NOT NULL,
                    memo VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                    reject_reason TINYINT UNSIGNED NOT NULL,
                    decided_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (request_id)
                ) ENGINE=InnoDB""",
                """CREATE TABLE IF NOT EXISTS secrets (
                    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    value VARCHAR(256) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    PRIMARY KEY (name)
                ) ENGINE=InnoDB""",
                """CREATE TABLE IF NOT EXISTS publish_groups (
                    group_id VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    created_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (group_id),
                    KEY publish_groups_created (created_at_ms)
                ) ENGINE=InnoDB""",
                "ALTER TABLE change_requests ADD COLUMN IF NOT EXISTS group_id"
                " VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NULL",
                """INSERT INTO rejections
                    SELECT request_id, user_id, currency, type, amount, memo, reject_reason,
                           COALESCE(applied_at_ms, updated_at_ms)
                    FROM change_requests WHERE status = 4
                    ON DUPLICATE KEY UPDATE request_id = rejections.request_id""",
            ],
        },
    ),
    # Database shards (docs/scaling.md): each database records its place in the shard map
    # at migrate (one row), so a process configured with the shards in another order, or
    # other counts, refuses to start instead of writing a partition into the wrong database.
    Migration(
        4,
        "shard identity",
        by_dialect={
            "sqlite": [
                """CREATE TABLE IF NOT EXISTS shard_identity (
                    singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
                    shard_id INTEGER NOT NULL,
                    shard_count INTEGER NOT NULL,
                    partition_count INTEGER NOT NULL,
                    recorded_at_ms INTEGER NOT NULL
                )"""
            ],
            "mysql": [
                """CREATE TABLE IF NOT EXISTS shard_identity (
                    singleton TINYINT UNSIGNED NOT NULL,
                    shard_id INT UNSIGNED NOT NULL,
                    shard_count INT UNSIGNED NOT NULL,
                    partition_count INT UNSIGNED NOT NULL,
                    recorded_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (singleton)
                ) ENGINE=InnoDB"""
            ],
        },
    ),
)

# Exchange operations (docs/api.md): transfer legs name their transfer and the other user;
# the legs of an atomic ChangeBalances share a group, numbered, so the sweep republishes
# them as one message; journal entries record where they stand in their partition's event
# stream (``ledgerd.events``). Request ids grow to 72 characters for the ids of a transfer's
# later legs (its id and a suffix: "~in", "~return").
_ASCII = "CHARACTER SET ascii COLLATE ascii_bin"
_MYSQL_V5_TRANSFER_COLUMNS = (
    f"ADD COLUMN IF NOT EXISTS transfer_id VARCHAR(64) {_ASCII} NOT NULL DEFAULT '',"
    " ADD COLUMN IF NOT EXISTS counterparty_user_id BIGINT UNSIGNED NOT NULL DEFAULT 0"
)
_SQLITE_V5_TRANSFER_COLUMNS = (
    "ADD COLUMN transfer_id TEXT NOT NULL DEFAULT ''",
    # Stored user ids are shifted by -2**63 on SQLite: this is user 0, "none".
    "ADD COLUMN counterparty_user_id INTEGER NOT NULL DEFAULT -9223372036854775808",
)
_V5 = Migration(
    5,
    "transfers, atomic groups and event positions",
    by_dialect={
        "sqlite": [
            *(
                f"ALTER TABLE {table} {column}"
                for table in ("change_requests", "journal", "rejections")
                for column in _SQLITE_V5_TRANSFER_COLUMNS
            ),
            "ALTER TABLE change_requests ADD COLUMN atomic_group TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE change_requests ADD COLUMN atomic_leg INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE journal ADD COLUMN partition_id INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE journal ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX IF NOT EXISTS journal_events ON journal (partition_id, event_seq)",
        ],
        "mysql": [
            f"ALTER TABLE change_requests MODIFY request_id VARCHAR(72) {_ASCII} NOT NULL,"
            f" {_MYSQL_V5_TRANSFER_COLUMNS},"
            f" ADD COLUMN IF NOT EXISTS atomic_group VARCHAR(72) {_ASCII} NOT NULL DEFAULT '',"
            " ADD COLUMN IF NOT EXISTS atomic_leg SMALLINT UNSIGNED NOT NULL DEFAULT 0",
            f"ALTER TABLE journal MODIFY request_id VARCHAR(72) {_ASCII} NOT NULL,"
            f" {_MYSQL_V5_TRANSFER_COLUMNS},"
            " ADD COLUMN IF NOT EXISTS partition_id INT UNSIGNED NOT NULL DEFAULT 0,"
            " ADD COLUMN IF NOT EXISTS event_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,"
            " ADD INDEX IF NOT EXISTS journal_events (partition_id, event_seq)",
            f"ALTER TABLE rejections MODIFY request_id VARCHAR(72) {_ASCII} NOT NULL,"
            f" {_MYSQL_V5_TRANSFER_COLUMNS}",
        ],
    },
)
# Never skip a log record (docs/operations.md, "Retention and gaps"): each partition's
# position records which incarnation of the topic it was read in (Kafka's topic id; ''
# until the next claim records it), so a topic deleted and created again is told apart.
_V6 = Migration(
    6,
    "the topic id of each partition's position",
    by_dialect={
        "sqlite": ["ALTER TABLE partition_offsets ADD COLUMN topic_id TEXT NOT NULL DEFAULT ''"],
        "mysql": [
            "ALTER TABLE partition_offsets ADD COLUMN IF NOT EXISTS topic_id"
            f" VARCHAR(64) {_ASCII} NOT NULL DEFAULT ''"
        ],
    },
)
# Poison records (docs/operations.md, "Dead-letter topic"): a request whose log record went to
# the DLQ (the database refused its values, or deciding it failed too often) is recorded
# with where it was and why, in the transaction that moves its partition past it, so
# GetChange answers FAILED instead of PENDING for ever; and the failures of deciding the
# record a partition is stuck at are counted here (one row per partition), so the count
# survives restarts and the record is dead-lettered after N tries instead of crash-looping
# the consumer. Version 7: step 6 belongs to another change (merged before this one).
_V7 = Migration(
    7,
    "dead letters and record failures",
    by_dialect={
        "sqlite": [
            """CREATE TABLE IF NOT EXISTS dead_letters (
                request_id TEXT PRIMARY KEY,
                topic TEXT NOT NULL,
                partition_id INTEGER NOT NULL,
                log_offset INTEGER NOT NULL,
                reason TEXT NOT NULL,
                error TEXT NOT NULL,
                dead_lettered_at_ms INTEGER NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE IF NOT EXISTS record_failures (
                topic TEXT NOT NULL,
                partition_id INTEGER NOT NULL,
                log_offset INTEGER NOT NULL,
                attempts INTEGER NOT NULL,
                error TEXT NOT NULL,
                updated_at_ms INTEGER NOT NULL,
                PRIMARY KEY (topic, partition_id)
            )""",
        ],
        "mysql": [
            f"""CREATE TABLE IF NOT EXISTS dead_letters (
                request_id VARCHAR(72) {_ASCII} NOT NULL,
                topic VARCHAR(249) {_ASCII} NOT NULL,
                partition_id INT NOT NULL,
                log_offset BIGINT NOT NULL,
                reason VARCHAR(32) {_ASCII} NOT NULL,
                error VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                dead_lettered_at_ms BIGINT NOT NULL,
                PRIMARY KEY (request_id)
            ) ENGINE=InnoDB""",
            f"""CREATE TABLE IF NOT EXISTS record_failures (
                topic VARCHAR(249) {_ASCII} NOT NULL,
                partition_id INT NOT NULL,
                log_offset BIGINT NOT NULL,
                attempts INT UNSIGNED NOT NULL,
                error VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                PRIMARY KEY (topic, partition_id)
            ) ENGINE=InnoDB""",
        ],
    },
)
# A journal that stays cheap as it grows (docs/journal-write-measurement.md): rows are
# clustered by an append-ordered entry id instead of (user, currency, version), so a batch's
# rows land at the end of the table instead of at random pages of it; (user, currency,
# version) and request_id stay unique, as narrow secondary indexes (the request_id index is
# idempotency's last guard and answers GetChange once the outbox row is gone). MariaDB:
# one ALTER (atomic); run again after a crash it drops and re-adds the same primary key.
# SQLite cannot change a primary key in place: the table is copied, in the migration's
# transaction.
_SQLITE_V8_COLUMNS = (
    "user_id, currency, version, request_id, type, amount, available_after, frozen_after,"
    " applied_at_ms, memo, transfer_id, counterparty_user_id, partition_id, event_seq"
)
_V8 = Migration(
    8,
    "the journal clustered by an append-ordered entry id",
    by_dialect={
        "sqlite": [
            """CREATE TABLE journal_v8 (
                entry_id INTEGER PRIMARY KEY,
                user_id INTEGER NOT NULL,
                currency TEXT NOT NULL,
                version INTEGER NOT NULL,
                request_id TEXT NOT NULL,
                type INTEGER NOT NULL,
                amount TEXT NOT NULL,
                available_after TEXT NOT NULL,
                frozen_after TEXT NOT NULL,
                applied_at_ms INTEGER NOT NULL,
                memo TEXT NOT NULL,
                transfer_id TEXT NOT NULL DEFAULT '',
                counterparty_user_id INTEGER NOT NULL DEFAULT -9223372036854775808,
                partition_id INTEGER NOT NULL DEFAULT 0,
                event_seq INTEGER NOT NULL DEFAULT 0
            )""",
            f"INSERT INTO journal_v8 ({_SQLITE_V8_COLUMNS})"
            f" SELECT {_SQLITE_V8_COLUMNS} FROM journal ORDER BY applied_at_ms, partition_id,"
            " event_seq, user_id, currency, version",
            "DROP TABLE journal",
            "ALTER TABLE journal_v8 RENAME TO journal",
            "CREATE UNIQUE INDEX journal_account ON journal (user_id, currency, version)",
            "CREATE UNIQUE INDEX journal_request_id ON journal (request_id)",
            "CREATE INDEX journal_events ON journal (partition_id, event_seq)",
        ],
        "mysql": [
            "ALTER TABLE journal"
            " ADD COLUMN IF NOT EXISTS entry_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT FIRST,"
            " DROP PRIMARY KEY, ADD PRIMARY KEY (entry_id),"
            " ADD UNIQUE KEY IF NOT EXISTS journal_account (user_id, currency, version)"
        ],
    },
)
# Balances as of a moment and statements (docs/api.md, *Time*) look for an account's first
# entry applied at or after a time: the account's entries by applied_at_ms, with version in
# the index so the lookup reads the index alone. Without it that lookup walks the account's
# entries in version order from its first one, reading each row for its time.
_V9 = Migration(
    9,
    "the journal by account and applied time",
    by_dialect={
        "sqlite": [
            "CREATE INDEX IF NOT EXISTS journal_account_time"
            " ON journal (user_id, currency, applied_at_ms, version)"
        ],
        "mysql": [
            "ALTER TABLE journal ADD INDEX IF NOT EXISTS journal_account_time"
            " (user_id, currency, applied_at_ms, version)"
        ],
    },
)
# Locked accounts (docs/api.md, "Locked accounts"): an account's AccountLock value (0: not
# locked), set by its lock changes in the consumer's batch transaction like its amounts;
# each journal entry's lock right after it; and who asked for a lock change (the signing
# key id), carried from the outbox row to its journal entry. All default, so existing
# rows need no rewrite (MariaDB adds such columns in place).
_V10 = Migration(
    10,
    "account locks",
    by_dialect={
        "sqlite": [
            "ALTER TABLE balances ADD COLUMN lock_scope INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE change_requests ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE journal ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE journal ADD COLUMN lock_after INTEGER NOT NULL DEFAULT 0",
        ],
        "mysql": [
            "ALTER TABLE balances ADD COLUMN IF NOT EXISTS lock_scope TINYINT UNSIGNED NOT NULL"
            " DEFAULT 0",
            "ALTER TABLE change_requests ADD COLUMN IF NOT EXISTS actor VARCHAR(256)"
            " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT ''",
            "ALTER TABLE journal ADD COLUMN IF NOT EXISTS actor VARCHAR(256)"
            " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT ''",
            "ALTER TABLE journal ADD COLUMN IF NOT EXISTS lock_after TINYINT UNSIGNED NOT NULL"
            " DEFAULT 0",
        ],
    },
)
# Holds (docs/api.md, "Holds"): each hold as its partition's consumer last committed it, in
# the batch's transaction (so it lives in its holder's shard); ``holds_due`` answers the
# expiry sweep (open holds by expiry) without a scan. A hold change's hold travels on its
# outbox row (with a HOLD's expiry), its journal entry and its rejection.
_V11 = Migration(
    11,
    "holds",
    by_dialect={
        "sqlite": [
            """CREATE TABLE IF NOT EXISTS holds (
                hold_id TEXT PRIMARY KEY,
                user_id INTEGER NOT NULL,
                currency TEXT NOT NULL,
                amount TEXT NOT NULL,
                captured TEXT NOT NULL,
                state INTEGER NOT NULL,
                expires_at_ms INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL,
                updated_at_ms INTEGER NOT NULL
            ) WITHOUT ROWID""",
            "CREATE INDEX IF NOT EXISTS holds_due ON holds (state, expires_at_ms)",
            "ALTER TABLE change_requests ADD COLUMN hold_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE change_requests ADD COLUMN hold_expires_at_ms INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE journal ADD COLUMN hold_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE rejections ADD COLUMN hold_id TEXT NOT NULL DEFAULT ''",
        ],
        "mysql": [
            f"""CREATE TABLE IF NOT EXISTS holds (
                hold_id VARCHAR(64) {_ASCII} NOT NULL,
                user_id BIGINT UNSIGNED NOT NULL,
                currency VARCHAR(16) {_ASCII} NOT NULL,
                amount DECIMAL(38,18) NOT NULL,
                captured DECIMAL(38,18) NOT NULL,
                state TINYINT UNSIGNED NOT NULL,
                expires_at_ms BIGINT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                PRIMARY KEY (hold_id),
                KEY holds_due (state, expires_at_ms)
            ) ENGINE=InnoDB""",
            f"ALTER TABLE change_requests ADD COLUMN IF NOT EXISTS hold_id VARCHAR(64) {_ASCII}"
            " NOT NULL DEFAULT '',"
            " ADD COLUMN IF NOT EXISTS hold_expires_at_ms BIGINT NOT NULL DEFAULT 0",
            f"ALTER TABLE journal ADD COLUMN IF NOT EXISTS hold_id VARCHAR(64) {_ASCII}"
            " NOT NULL DEFAULT ''",
            f"ALTER TABLE rejections ADD COLUMN IF NOT EXISTS hold_id VARCHAR(64) {_ASCII}"
            " NOT NULL DEFAULT ''",
        ],
    },
)
# The outbox holds only requests in flight since the consumer deletes a row with its
# outcome (schema 11's code): the sweep's scans are short without an index, and the index
# cost every change an entry to write and one to delete and purge: apply's MariaDB CPU per
# change was 36 and 33 µs with it, 26 and 27 without (ledgerd bench, same sitting).
_V12 = Migration(
    12,
    "the outbox without its status index",
    by_dialect={
        "sqlite": ["DROP INDEX IF EXISTS change_requests_status"],
        "mysql": ["ALTER TABLE change_requests DROP INDEX IF EXISTS change_requests_status"],
    },
)
# A journal without journal_account_time (docs/journal-write-measurement.md, "what each
# journal index costs at 5M rows"): that index grew hottest of the journal's and, with the
# others, outgrew the buffer pool (a journal row cost MariaDB 78.5 µs at 5M rows with it,
# 27.0 without). What it answered, an account's first entry stamped at or after a moment,
# is found by halving the account's versions instead, which needs stamps that never fall
# as versions rise: the consumer stamps no batch earlier than the newest stamp recorded
# (``partition_offsets.stamped_at_ms``, written with each batch's offsets), and the
# entries stamped before this schema take the largest stamp up to their version, what
# their moment already was (docs/api.md, *Time*), so no answer about a moment changes.
_CLAMP_STAMPS = (
    "SELECT entry_id, MAX(applied_at_ms) OVER (PARTITION BY user_id, currency"
    " ORDER BY version) AS effective FROM journal"
)
_RECORD_NEWEST_STAMP = (
    "UPDATE partition_offsets SET stamped_at_ms ="
    " (SELECT COALESCE(MAX(applied_at_ms), 0) FROM journal)"
)
_V13 = Migration(
    13,
    "stamps that never fall, and the journal without journal_account_time",
    by_dialect={
        "sqlite": [
            "ALTER TABLE partition_offsets ADD COLUMN stamped_at_ms INTEGER NOT NULL DEFAULT 0",
            f"UPDATE journal SET applied_at_ms = e.effective FROM ({_CLAMP_STAMPS}) AS e"
            " WHERE e.entry_id = journal.entry_id AND journal.applied_at_ms < e.effective",
            _RECORD_NEWEST_STAMP,
            "DROP INDEX IF EXISTS journal_account_time",
        ],
        "mysql": [
            "ALTER TABLE partition_offsets"
            " ADD COLUMN IF NOT EXISTS stamped_at_ms BIGINT NOT NULL DEFAULT 0",
            f"UPDATE journal AS j JOIN ({_CLAMP_STAMPS}) AS e ON e.entry_id = j.entry_id"
            " SET j.applied_at_ms = e.effective WHERE j.applied_at_ms < e.effective",
            _RECORD_NEWEST_STAMP,
            "ALTER TABLE journal DROP INDEX IF EXISTS journal_account_time",
        ],
    },
)
# An account's balance is its newest journal entry (its amounts, version and lock right
# after it), read from the journal_account index: the consumer no longer writes a balance
# row per account per batch, MariaDB's most expensive row after the journal's (apply: 50.6
# -> 42.9 µs a change, issue 22). Until now both were written in each batch's transaction,
# so the rows were the newest entries (the audit replays that); the table goes.
_V14 = Migration(14, "balances read from the journal", shared=["DROP TABLE IF EXISTS balances"])
MIGRATIONS: Sequence[Migration] = (
    *_MIGRATIONS_TO_V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
    _V11,
    _V12,
    _V13,
    _V14,
)

LATEST_VERSION = MIGRATIONS[-1].version
# The first version with the shard_identity table.
SHARD_IDENTITY_VERSION = 4
# The first version with the dead_letters and record_failures tables.
DEAD_LETTERS_VERSION = 7
