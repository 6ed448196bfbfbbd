"""An embedded log file written before records carried their append time."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ledgerd.log.embedded import EmbeddedLog


def test_a_log_file_from_before_append_times_opens_with_its_records_unstamped(
    tmp_path: Path,
) -> None:
    """Its records read as appended at 0 (unknown: the consumer judges them by when it reads
    them, as before); records appended since carry the time."""
    path = tmp_path / "log.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            """CREATE TABLE records (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
                key BLOB NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL,
                PRIMARY KEY (topic, partition, offset)
            ) WITHOUT ROWID"""
        )
        old.execute(
            "CREATE TABLE topics (topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL,"
            " topic_id TEXT NOT NULL DEFAULT '')"
        )
        old.execute("INSERT INTO topics VALUES ('t', 3, 'id-1')")
        old.execute("INSERT INTO records VALUES ('t', 0, 0, x'6b', x'6f6c64', '[]')")
    old.close()
    log = EmbeddedLog(path, partition_count=3)
    try:
        producer = log.producer()
        before_ms = int(time.time() * 1000)
        producer.publish("t", b"k", b"new", partition=0)
        assert producer.flush(10.0) == 0
        producer.close()
        first, second = log.read("t", 0, 0, 10)
        assert (first.value, first.appended_at_ms) == (b"old", 0)
        assert second.value == b"new" and second.offset == 1
        assert before_ms <= second.appended_at_ms <= int(time.time() * 1000)
    finally:
        log.close()
