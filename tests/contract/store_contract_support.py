"""Helpers of the store contract tests: a clock the test advances, stores on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import (
    drop_database,
    fresh_database_url,
    migrated_database_url,
    migrated_shard_urls,
)

from ledgerd.store.mysql import MysqlStore
from ledgerd.store.sharded import ShardedStore
from ledgerd.store.shards import Shard, prepare_shards
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sqlite import SqliteStore


class FakeClock:
    """Unix milliseconds that move only when the test says so."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class BlankDatabase:
    """A database no one has created yet, by URL; ``open`` gives stores on it."""

    def __init__(self, url: str, clock_ms: Callable[[], int] | None = None) -> None:
        self.url = url
        self._clock_ms = clock_ms
        self._opened: list[SqlStore] = []

    def open(self) -> SqlStore:
        store: SqlStore
        if self.url.startswith("mysql://"):
            store = MysqlStore(self.url, clock_ms=self._clock_ms)
        else:
            store = SqliteStore(Path(self.url.removeprefix("sqlite:///")), clock_ms=self._clock_ms)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()
        if self.url.startswith("mysql://"):
            drop_database(self.url)


@contextmanager
def blank_database(
    backend: str,
    tmp_path: Path,
    clock_ms: Callable[[], int] | None = None,
    *,
    migrated: bool = False,
) -> Iterator[BlankDatabase]:
    """A new database of the backend; its stores closed and the database removed afterwards.
    ``migrated``: a MySQL one already has the latest schema (a copy of the harness's
    template), so its store's ``migrate`` only draws the message key."""
    if backend == "mysql":
        url = migrated_database_url() if migrated else fresh_database_url()
    else:
        url = f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:8]}.sqlite'}"
    database = BlankDatabase(url, clock_ms)
    try:
        yield database
    finally:
        database.close()


# The sharded contract store: partition p in shard p mod 2, so partitions 0 and 2 are in
# shard 0 with user 1 (partition 0 of 3), partition 1 in shard 1 (on the second MariaDB).
SHARDED_PARTITIONS = 3


@contextmanager
def sharded_mysql_store(clock_ms: Callable[[], int] | None = None) -> Iterator[ShardedStore]:
    """A migrated ShardedStore over two new databases, one on each MariaDB server."""
    urls = migrated_shard_urls(2)
    shards = [Shard(i, url, MysqlStore(url, clock_ms=clock_ms)) for i, url in enumerate(urls)]
    store = ShardedStore([shard.store for shard in shards], SHARDED_PARTITIONS)
    try:
        prepare_shards(shards, SHARDED_PARTITIONS)
        yield store
    finally:
        store.close()
        for url in urls:
            drop_database(url)
