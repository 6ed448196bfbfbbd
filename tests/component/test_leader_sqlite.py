"""LeaderElector on the embedded SQLite store: the real lock methods, whose expiry runs
on the database clock (tests/unit/test_leader.py covers the timing rules with
controllable clocks; this checks the elector and the real store agree)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import wait_until

from ledgerd.runtime.leader import LeaderElector
from ledgerd.store.sqlite import SqliteStore

TTL_S = 0.5


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    made = SqliteStore(tmp_path / "store.sqlite")
    made.migrate()
    yield made
    made.close()


def elector(store: SqliteStore, owner: str) -> LeaderElector:
    return LeaderElector(store, name="outbox", owner=owner, ttl_s=TTL_S, renew_interval_s=0.1)


def test_one_leader_renewing_and_release_hands_over_at_once(store: SqliteStore) -> None:
    """The first contender leads and renews; the second waits; after release it leads at
    once, with a larger epoch."""
    a, b = elector(store, "a"), elector(store, "b")
    a.step()
    b.step()
    assert a.is_leader() and not b.is_leader()
    a.step()  # a renewal
    assert a.token is not None and a.token.epoch == 1
    a.release()
    b.step()
    assert b.token is not None and b.token.epoch == 2


def test_takeover_after_expiry_by_the_database_clock(store: SqliteStore) -> None:
    """A leader that stops renewing is replaced once its lock expires, not before."""
    a, b = elector(store, "a"), elector(store, "b")
    a.step()
    acquired_at = time.monotonic()
    b.step()
    assert not b.is_leader()

    def b_leads() -> bool:
        b.step()
        return b.is_leader()

    wait_until(b_leads, 10 * TTL_S + 10, "the contender taking the expired lock")
    # The database clock is the wall clock, read after a acquired: no earlier than TTL.
    assert time.monotonic() - acquired_at >= TTL_S - 0.01
    assert b.token is not None and b.token.epoch == 2
