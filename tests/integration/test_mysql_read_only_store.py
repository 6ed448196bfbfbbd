"""A MariaDB that answers but refuses writes (a read-only transaction per session here:
`SET GLOBAL read_only` is not for a shared server): writes are refused as UNAVAILABLE,
reads are served, and health names the store read-only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from harness import drop_database, fresh_database_url

from ledgerd.api.errors import status_of
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.errors import StoreReadOnly
from ledgerd.runtime.health import HealthChecker, Roles
from ledgerd.runtime.supervisor import Supervisor
from ledgerd.store.mysql import MysqlStore
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.mysql_dialect import MysqlDialect


class ReadOnlySessions(MysqlDialect):
    """Every connection in a read-only transaction mode, as on a server with read_only on
    (the server refuses each write; here with error 1792 rather than 1290)."""

    def _connect(self, database: str | None = None) -> Any:
        connection = super()._connect(database)
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        return connection


def accept(store: SqlStore, request_id: str) -> None:
    change = ChangeRequest(request_id, 1, "USD", ChangeType.DEPOSIT, SCALE)
    store.accept_requests([request_id], lambda stored: [change], 1)


@pytest.fixture(scope="module")
def stores() -> Iterator[tuple[SqlStore, SqlStore]]:
    """(writable, read-only) stores on one migrated database holding request `before`."""
    url = fresh_database_url()
    writable = MysqlStore(url)
    read_only = SqlStore(ReadOnlySessions(url))
    try:
        writable.migrate()
        accept(writable, "before")
        yield writable, read_only
    finally:
        read_only.close()
        writable.close()
        drop_database(url)


def health_of(store: SqlStore) -> tuple[bool, str]:
    checker = HealthChecker(
        Roles(),
        Supervisor(),
        store_ping=store.ping,
        log_ping=lambda: None,
        cache_ping=lambda: None,
        shared_cache=True,
    )
    health = asyncio.run(checker.check())
    return health.ready, health.components["store"]


def test_writes_are_refused_as_unavailable_and_reads_are_served(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    """A write gets StoreReadOnly (retriable, UNAVAILABLE); a read gets its answer."""
    _, read_only = stores
    with pytest.raises(StoreReadOnly, match="1792") as refused:
        accept(read_only, "refused")
    assert refused.value.retriable
    assert status_of(refused.value) == grpc.StatusCode.UNAVAILABLE
    assert set(read_only.get_requests(["before", "refused"])) == {"before"}


def test_health_names_the_read_only_store_and_is_not_ready(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    """The health probe tries a write that changes nothing: `store: read-only: …`, not ready;
    the same database through a writable session is `ok` and ready."""
    writable, read_only = stores
    ready, store = health_of(read_only)
    assert not ready
    assert store.startswith("read-only: ")
    assert "1792" in store
    assert health_of(writable) == (True, "ok")
