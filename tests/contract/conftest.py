"""Backends under contract: every implementation of Store and EventLog runs the same tests.

Production backends join the parameter lists as they are added; their
servers come from scripts/services (started by `make test`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import fresh_mysql_store, services
from store_contract_support import BlankDatabase, FakeClock, blank_database, sharded_mysql_store

from ledgerd.log.base import EventLog
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.log.kafka import KafkaLog
from ledgerd.store.base import Store
from ledgerd.store.sqlite import SqliteStore

STORE_BACKENDS = ["sqlite", "mysql", "sharded"]
LOG_BACKENDS = ["embedded", "kafka"]


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        backend: Store = SqliteStore(tmp_path / "store.sqlite")
        backend.migrate()
        yield backend
        backend.close()
    elif request.param == "sharded":
        with sharded_mysql_store() as backend:
            yield backend
    else:
        with fresh_mysql_store() as backend:
            yield backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=STORE_BACKENDS)
def clocked_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[Store]:
    """A migrated store whose leader locks read ``clock`` instead of the database's."""
    if request.param == "sharded":
        with sharded_mysql_store(clock_ms=clock) as backend:
            yield backend
        return
    with blank_database(request.param, tmp_path, clock_ms=clock, migrated=True) as database:
        backend = database.open()
        backend.migrate()
        yield backend


@pytest.fixture(params=["sqlite", "mysql"])  # one database each: migrations are per shard
def blank_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlankDatabase]:
    """A database not created yet (no schema), on every backend."""
    with blank_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture(params=LOG_BACKENDS)
def event_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    log: EventLog
    if request.param == "embedded":
        log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    else:
        log = KafkaLog(services.kafka_bootstrap(), partition_count=3)
    yield log
    log.close()


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses."""
    return f"contract-{uuid.uuid4().hex[:12]}"
