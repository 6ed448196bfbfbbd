"""The embedded event log: durable partitions in a SQLite file, for one process.

Records are rows keyed by (topic, partition, offset); a publish batch is one
transaction with synchronous=FULL, so a delivered record survives a crash.
Consumers in the same process wait on a condition instead of polling the
file. A group has one member: the embedded deployment runs one process.

Records are never deleted, so a partition's offsets have no gaps; each topic
gets a random id when created, so a log file replaced by another (deleted,
restored from elsewhere) is told apart from the one a position was read in.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ledgerd.domain.partitioning import murmur2
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import DeliveryCallback, LogRecord, OnAssign, OnRevoke, PartitionIdentity
from ledgerd.support.sqlite import ThreadConnections

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS records (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        headers TEXT NOT NULL,
        appended_at_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (topic, partition, offset)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS topics (
        topic TEXT PRIMARY KEY,
        partitions INTEGER NOT NULL,
        topic_id TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS group_offsets (
        group_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (group_id, topic, partition)
    )""",
]

_READ_RECORDS = (
    "SELECT offset, key, value, headers, appended_at_ms FROM records"
    " WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?"
)

_Pending = tuple[str, int, bytes, bytes, str, DeliveryCallback | None]


class EmbeddedLog:
    """The EventLog interface on a local SQLite file."""

    def __init__(self, path: Path, partition_count: int = 3, max_queued: int = 1_000_000) -> None:
        self.partition_count = partition_count
        self.max_queued = max_queued
        self.path = path
        self._db = ThreadConnections(path, LogUnavailable)
        self._appended = threading.Condition()
        self._end_offsets: dict[tuple[str, int], int] = {}
        self._topics: dict[str, int] = {}
        with self._db.write() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(topics)")}
            if "topic_id" not in columns:  # a file from before topic ids
                connection.execute(
                    "ALTER TABLE topics ADD COLUMN topic_id TEXT NOT NULL DEFAULT ''"
                )
            records = {row[1] for row in connection.execute("PRAGMA table_info(records)")}
            if "appended_at_ms" not in records:  # a file from before append times (0: unknown)
                connection.execute(
                    "ALTER TABLE records ADD COLUMN appended_at_ms INTEGER NOT NULL DEFAULT 0"
                )
            for (topic,) in connection.execute("SELECT topic FROM topics WHERE topic_id = ''"):
                connection.execute(
                    "UPDATE topics SET topic_id = ? WHERE topic = ?", (_new_topic_id(), topic)
                )
        for topic, partitions in self._db.read("SELECT topic, partitions FROM topics"):
            self._topics[topic] = partitions
        for topic, partition, end in self._db.read(
            "SELECT topic, partition, MAX(offset) + 1 FROM records GROUP BY topic, partition"
        ):
            self._end_offsets[(topic, partition)] = end

    def ensure_topics(self, topics: Collection[str]) -> None:
        with self._db.write() as connection:
            for topic in topics:
                connection.execute(
                    "INSERT INTO topics (topic, partitions, topic_id) VALUES (?, ?, ?)"
                    " ON CONFLICT (topic) DO NOTHING",
                    (topic, self.partition_count, _new_topic_id()),
                )
        for topic, partitions in self._db.read("SELECT topic, partitions FROM topics"):
            self._topics[topic] = partitions

    def partitions_of(self, topic: str) -> int:
        try:
            return self._topics[topic]
        except KeyError:
            raise LogUnavailable(f"unknown topic {topic!r}") from None

    def producer(self, *, gapless: bool = False, linger_ms: int | None = None) -> EmbeddedProducer:
        # Always gapless: a flush writes everything it buffered in one transaction. No
        # linger: records are written at the producer's poll/flush.
        return EmbeddedProducer(self)

    def consumer(self, group_id: str, *, skip_lost_records: bool = False) -> EmbeddedConsumer:
        # Nothing is ever lost here (no retention): there is nothing to skip.
        return EmbeddedConsumer(self, group_id)

    def partition_identity(self, topic: str, partition: int) -> PartitionIdentity:
        rows = self._db.read("SELECT topic_id FROM topics WHERE topic = ?", (topic,))
        if not rows:
            raise LogUnavailable(f"unknown topic {topic!r}")
        end = self.end_offsets(topic).get(partition, 0)
        ((start,),) = self._db.read(
            "SELECT MIN(offset) FROM records WHERE topic = ? AND partition = ?", (topic, partition)
        )
        return PartitionIdentity(rows[0][0], end if start is None else start, end)

    def end_offsets(self, topic: str) -> Mapping[int, int]:
        with self._appended:
            return {
                partition: self._end_offsets.get((topic, partition), 0)
                for partition in range(self.partitions_of(topic))
            }

    def last_record(self, topic: str, partition: int) -> LogRecord | None:
        rows = self._db.read(
            "SELECT offset, key, value, headers, appended_at_ms FROM records"
            " WHERE topic = ? AND partition = ? ORDER BY offset DESC LIMIT 1",
            (topic, partition),
        )
        return _record(topic, partition, rows[0]) if rows else None

    def reader(self, topic: str, *, from_beginning: bool) -> EmbeddedReader:
        ends = self.end_offsets(topic)
        return EmbeddedReader(self, topic, {p: 0 if from_beginning else ends[p] for p in ends})

    def ping(self) -> None:
        self._db.read("SELECT 1")

    def close(self) -> None:
        with self._appended:
            self._appended.notify_all()
        self._db.close()

    # -- used by producers and consumers --------------------------------------
    def append(self, pending: Sequence[_Pending]) -> None:
        """Write records durably in one transaction and wake waiting consumers."""
        with self._appended:
            ends = dict(self._end_offsets)
            rows = []
            appended_at_ms = int(time.time() * 1000)
            for topic, partition, key, value, headers, _ in pending:
                offset = ends.get((topic, partition), 0)
                ends[(topic, partition)] = offset + 1
                rows.append((topic, partition, offset, key, value, headers, appended_at_ms))
            with self._db.write() as connection:
                connection.executemany(
                    "INSERT INTO records"
                    " (topic, partition, offset, key, value, headers, appended_at_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            self._end_offsets = ends
            self._appended.notify_all()

    def read(self, topic: str, partition: int, offset: int, limit: int) -> list[LogRecord]:
        rows = self._db.read(_READ_RECORDS, (topic, partition, offset, limit))
        return [_record(topic, partition, row) for row in rows]

    def wait_for_records(self, positions: Mapping[tuple[str, int], int], timeout_s: float) -> None:
        """Block until a partition has records past its position, or the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._appended:
            while not any(self._end_offsets.get(tp, 0) > pos for tp, pos in positions.items()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._appended.wait(remaining)

    def group_offsets(
        self, group_id: str, topic: str, partitions: Collection[int]
    ) -> dict[int, int]:
        rows = self._db.read(
            "SELECT partition, next_offset FROM group_offsets WHERE group_id = ? AND topic = ?",
            (group_id, topic),
        )
        stored = {row[0]: row[1] for row in rows}
        return {p: stored.get(p, 0) for p in partitions}

    def save_group_offsets(self, group_id: str, topic: str, offsets: Mapping[int, int]) -> None:
        with self._db.write() as connection:
            connection.executemany(
                "INSERT INTO group_offsets (group_id, topic, partition, next_offset)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (group_id, topic, partition)"
                " DO UPDATE SET next_offset = excluded.next_offset",
                [(group_id, topic, p, offset) for p, offset in offsets.items()],
            )


def _new_topic_id() -> str:
    return uuid.uuid4().hex


# The stored headers, [[name, text], ...] as ``publish`` writes them: msgspec reads them
# in a third of json.loads's time, and every record the consumer reads has them.
_HEADERS_DECODER = msgspec.json.Decoder(list[tuple[str, str]])


def _record(topic: str, partition: int, row: Sequence[Any]) -> LogRecord:
    """A ``records`` row (offset, key, value, headers, appended_at_ms) as a LogRecord."""
    return LogRecord(
        topic,
        partition,
        row[0],
        bytes(row[1]),
        bytes(row[2]),
        tuple([(name, value.encode()) for name, value in _HEADERS_DECODER.decode(row[3])]),
        row[4],
    )


class EmbeddedProducer:
    """Buffers records and writes them as one transaction on poll/flush."""

    def __init__(self, log: EmbeddedLog) -> None:
        self._log = log
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._closed = False
        # The last headers tuple published with its stored text, as one pair (producers
        # are shared by threads): a publisher that sends the same immutable headers with
        # every record (the events publisher) encodes them once.
        self._headers_memo: tuple[Sequence[tuple[str, bytes]], str] = ((), "[]")

    def publish(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        *,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        partitions = self._log.partitions_of(topic)
        if partition is None:
            partition = (murmur2(key) & 0x7FFFFFFF) % partitions
        last_headers, encoded_headers = self._headers_memo
        if headers is not last_headers:
            encoded_headers = json.dumps(
                [(name, v.decode("utf-8", "replace")) for name, v in headers]
            )
            if isinstance(headers, tuple):
                self._headers_memo = (headers, encoded_headers)
        with self._lock:
            if self._closed:
                raise LogUnavailable("producer is closed")
            if len(self._pending) >= self._log.max_queued:
                raise LogUnavailable("producer queue is full")
            self._pending.append((topic, partition, key, value, encoded_headers, on_delivery))

    def poll(self, timeout_s: float) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        error: Exception | None = None
        try:
            self._log.append(pending)
        except LogUnavailable as exc:
            error = exc
        for *_, on_delivery in pending:
            if on_delivery is not None:
                on_delivery(error)

    def flush(self, timeout_s: float) -> int:
        self.poll(timeout_s)
        return 0

    def close(self) -> None:
        if not self._closed:
            self.flush(1.0)
            self._closed = True


class EmbeddedConsumer:
    """The only member of its group: owns every partition of the topic."""

    def __init__(self, log: EmbeddedLog, group_id: str) -> None:
        self._log = log
        self._group_id = group_id
        self._topic: str | None = None
        self._on_assign: OnAssign | None = None
        self._on_revoke: OnRevoke | None = None
        self._positions: dict[int, int] = {}
        self._paused: set[int] = set()
        self._assigned = False

    def subscribe(self, topic: str, on_assign: OnAssign, on_revoke: OnRevoke) -> None:
        self._topic, self._on_assign, self._on_revoke = topic, on_assign, on_revoke
        self._assigned = False

    def _ensure_assigned(self) -> str:
        if self._topic is None or self._on_assign is None:
            raise LogUnavailable("consumer is not subscribed")
        if not self._assigned:
            partitions = list(range(self._log.partitions_of(self._topic)))
            self._positions = dict(self._on_assign(partitions))
            self._assigned = True
        return self._topic

    def poll_batch(self, max_records: int, timeout_s: float) -> Sequence[LogRecord]:
        topic = self._ensure_assigned()
        active = {p: pos for p, pos in self._positions.items() if p not in self._paused}
        records = self._read(topic, active, max_records)
        if not records and active and timeout_s > 0:
            self._log.wait_for_records({(topic, p): pos for p, pos in active.items()}, timeout_s)
            records = self._read(topic, active, max_records)
        for record in records:
            self._positions[record.partition] = record.offset + 1
        return records

    def _read(self, topic: str, positions: Mapping[int, int], max_records: int) -> list[LogRecord]:
        # Share the batch between partitions so a busy one cannot starve the others.
        records: list[LogRecord] = []
        share = max(1, max_records // max(1, len(positions)))
        for partition, position in positions.items():
            room = min(share, max_records - len(records))
            if room <= 0:
                break
            records += self._log.read(topic, partition, position, room)
        return records

    def gaps(self) -> Mapping[int, int]:
        # Records are never deleted; a position past the end waits for records, and the
        # owner's contiguity check sees any record that is not the one it expects.
        return {}

    def commit(self, next_offsets: Mapping[int, int]) -> None:
        if self._topic is not None and next_offsets:
            self._log.save_group_offsets(self._group_id, self._topic, next_offsets)

    def seek(self, partition: int, offset: int) -> None:
        self._positions[partition] = offset

    def committed(self, topic: str, partitions: Collection[int]) -> Mapping[int, int]:
        return self._log.group_offsets(self._group_id, topic, partitions)

    def pause(self, partitions: Collection[int]) -> None:
        self._paused.update(partitions)

    def resume(self, partitions: Collection[int]) -> None:
        self._paused.difference_update(partitions)

    def close(self) -> None:
        if self._assigned and self._on_revoke is not None:
            self._on_revoke(sorted(self._positions))
        self._assigned = False


class EmbeddedReader:
    """A group-less reader of every partition of a topic, from the positions it is given.

    It reads through a connection of its own, closed with it: the log's connections are
    one per thread and live as long as the log, and each TailEvents call polls from a
    thread of its own.
    """

    def __init__(self, log: EmbeddedLog, topic: str, positions: Mapping[int, int]) -> None:
        self._log = log
        self._topic = topic
        self._positions = dict(positions)
        self._connection: sqlite3.Connection | None = None

    def poll_batch(self, max_records: int, timeout_s: float) -> Sequence[LogRecord]:
        records = self._read(max_records)
        if not records and timeout_s > 0:
            self._log.wait_for_records(
                {(self._topic, p): pos for p, pos in self._positions.items()}, timeout_s
            )
            records = self._read(max_records)
        for record in records:
            self._positions[record.partition] = record.offset + 1
        return records

    def _read(self, max_records: int) -> list[LogRecord]:
        records: list[LogRecord] = []
        share = max(1, max_records // max(1, len(self._positions)))
        for partition, position in self._positions.items():
            room = min(share, max_records - len(records))
            if room <= 0:
                break
            records += self._read_partition(partition, position, room)
        return records

    def _read_partition(self, partition: int, offset: int, limit: int) -> list[LogRecord]:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self._log.path, timeout=30.0, check_same_thread=False
                )
            rows = self._connection.execute(
                _READ_RECORDS, (self._topic, partition, offset, limit)
            ).fetchall()
        except sqlite3.Error as exc:
            raise LogUnavailable(f"embedded log {self._log.path}: {exc}") from exc
        return [_record(self._topic, partition, row) for row in rows]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
