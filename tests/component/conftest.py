"""Components wired in-process over the embedded backends (SQLite store, embedded log)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from component_support import DLQ, TOPIC, Rig

from ledgerd.cache.memory import MemoryCache
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.store.sqlite import SqliteStore


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = SqliteStore(tmp_path / "store.sqlite")
    store.migrate()
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    log.ensure_topics([TOPIC, DLQ])
    made = Rig(store, log, MemoryCache())
    yield made
    log.close()
    store.close()
