"""The embedded store after a full disk or an I/O error: writes stop until a restart (a
latch), reads go on, and health names the store read-only so the API is not ready."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ledgerd.api.errors import status_of
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.errors import StoreReadOnly
from ledgerd.runtime.health import HealthChecker, Roles
from ledgerd.runtime.supervisor import Supervisor
from ledgerd.store.sqlite import SqliteStore

SQLITE_MAX_PAGES = 1_073_741_823


def accept(store: SqliteStore, prefix: str, count: int) -> None:
    ids = [f"{prefix}-{n}" for n in range(count)]
    changes = [ChangeRequest(i, 1, "USD", ChangeType.DEPOSIT, SCALE, "m" * 200) for i in ids]
    store.accept_requests(ids, lambda stored: [c for c in changes if c.request_id not in stored], 1)


def set_max_pages(store: SqliteStore, pages: int | None = None) -> None:
    """Cap the database at its current size (the disk is "full"), or lift the cap; for this
    thread's connection, the one the test's writes use."""
    with store.dialect.autocommit() as session:
        if pages is None:
            ((pages,),) = session.query("PRAGMA page_count")
        session.query(f"PRAGMA max_page_count = {pages}")


@pytest.fixture
def full_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A store whose last write failed with SQLITE_FULL, its cap lifted since."""
    store = SqliteStore(tmp_path / "store.sqlite", busy_timeout_s=1)
    store.migrate()
    accept(store, "before", 1)
    set_max_pages(store)
    with pytest.raises(StoreReadOnly, match="SQLITE_FULL"):
        accept(store, "filling", 500)
    set_max_pages(store, SQLITE_MAX_PAGES)  # space is back; writes must stay stopped
    yield store
    store.close()


def test_a_full_disk_stops_writes_until_restart(full_store: SqliteStore, tmp_path: Path) -> None:
    """After SQLITE_FULL every write is refused (UNAVAILABLE, retriable) although space came
    back; a restarted store writes again, and the failed transaction held no lock."""
    with pytest.raises(StoreReadOnly, match="writes stopped after SQLITE_FULL") as refused:
        accept(full_store, "after", 1)
    assert refused.value.retriable
    assert status_of(refused.value) == grpc.StatusCode.UNAVAILABLE
    # Writes through autocommit statements are refused too (the connection is query_only).
    with pytest.raises(StoreReadOnly), full_store.dialect.autocommit() as session:
        session.execute("DELETE FROM change_requests")

    restarted = SqliteStore(tmp_path / "store.sqlite", busy_timeout_s=1)
    try:
        accept(restarted, "restarted", 1)
        assert set(restarted.get_requests(["before-0", "restarted-0"])) == {
            "before-0",
            "restarted-0",
        }
    finally:
        restarted.close()


def test_reads_go_on_after_writes_stopped(full_store: SqliteStore) -> None:
    """What was committed stays readable, on the failed thread's connection and others."""
    assert set(full_store.get_requests(["before-0"])) == {"before-0"}
    found: list[set[str]] = []
    reader = threading.Thread(
        target=lambda: found.append(set(full_store.get_requests(["before-0"])))
    )
    reader.start()
    reader.join(10)
    assert found == [{"before-0"}]


def test_health_names_the_store_read_only_and_the_api_is_not_ready(
    full_store: SqliteStore,
) -> None:
    """components["store"] says read-only and why; the process is not ready (API role)."""
    with pytest.raises(StoreReadOnly):
        full_store.ping()
    checker = HealthChecker(
        Roles(),
        Supervisor(),
        store_ping=full_store.ping,
        log_ping=lambda: None,
        cache_ping=lambda: None,
        shared_cache=False,
    )
    health = asyncio.run(checker.check())
    assert not health.ready
    assert health.components["store"].startswith("read-only: ")
    assert "SQLITE_FULL" in health.components["store"]
