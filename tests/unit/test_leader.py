"""LeaderElector in-process, with controllable clocks: its own (local validity) and the
store's (lock expiry, which the real stores take from the database clock).

The fake store implements only the lock methods, with the semantics of the SQL ones:
acquire takes a free or expired lock and bumps the epoch; renew extends a lock still
held by the same owner and epoch; release expires it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ledgerd.errors import StoreUnavailable
from ledgerd.runtime.leader import LeaderElector
from ledgerd.store.base import LockToken

TTL_S, RENEW_S = 5.0, 2.0


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Row:
    owner: str = ""
    epoch: int = 0
    expires_at_ms: int = 0


class LockStore:
    """The lock methods of a Store over an in-memory table and the "database" clock ``db``.

    ``down`` makes every call raise StoreUnavailable; ``call_takes_s`` advances the
    clocks during a call (a slow round trip) before it reads the database clock.
    """

    def __init__(self, db: Clock, *also_advanced: Clock) -> None:
        self.db = db
        self.also_advanced = also_advanced
        self.rows: dict[str, Row] = {}
        self.down = False
        self.call_takes_s = 0.0

    def _now_ms(self) -> int:
        if self.down:
            raise StoreUnavailable("the database is down")
        for clock in (self.db, *self.also_advanced):
            clock.advance(self.call_takes_s)
        return round(self.db() * 1000)

    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        now = self._now_ms()
        row = self.rows.setdefault(name, Row())
        if row.expires_at_ms > now:
            return None
        row.owner, row.epoch, row.expires_at_ms = owner, row.epoch + 1, now + ttl_ms
        return row.epoch

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        now = self._now_ms()
        row = self.rows.get(token.name)
        if row is None or (row.owner, row.epoch) != (token.owner, token.epoch):
            return False
        if row.expires_at_ms <= now:
            return False
        row.expires_at_ms = now + ttl_ms
        return True

    def release_lock(self, token: LockToken) -> None:
        self._now_ms()
        row = self.rows.get(token.name)
        if row is not None and (row.owner, row.epoch) == (token.owner, token.epoch):
            row.expires_at_ms = 0


@pytest.fixture
def clock() -> Clock:
    """One clock for the store and every elector (no skew), unless a test makes more."""
    return Clock()


@pytest.fixture
def store(clock: Clock) -> LockStore:
    return LockStore(clock)


def elector(store: LockStore, owner: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        store,  # type: ignore[arg-type]  # only the lock methods are needed
        name="outbox",
        owner=owner,
        ttl_s=TTL_S,
        renew_interval_s=RENEW_S,
        clock=clock,
    )


def epoch_of(candidate: LeaderElector) -> int:
    token = candidate.token
    assert token is not None, f"{candidate.owner} does not lead"
    return token.epoch


def test_acquires_a_free_lock(store: LockStore, clock: Clock) -> None:
    """The first round of a lone contender takes the lock, with the first epoch."""
    a = elector(store, "a", clock)
    assert not a.is_leader()
    a.step()
    assert a.is_leader()
    assert a.token == LockToken("outbox", "a", 1)


def test_renewals_keep_the_lock_past_its_first_ttl(store: LockStore, clock: Clock) -> None:
    """Renewing every interval holds the lock for many TTLs, in one epoch, with a
    contender trying all along."""
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    a.step()
    for _ in range(10):  # 20 s: four TTLs
        clock.advance(RENEW_S)
        a.step()
        b.step()
        assert a.is_leader() and not b.is_leader()
    assert epoch_of(a) == 1


def test_contender_takes_over_only_after_the_ttl_by_the_store_clock(clock: Clock) -> None:
    """The leader dies (stops renewing): another process takes the lock when the store's
    clock says the TTL has passed, not before, whatever its own clock says."""
    local_b = Clock(50.0)  # the contender's clock: another process, another origin
    store = LockStore(clock, local_b)
    a, b = elector(store, "a", clock), elector(store, "b", local_b)
    a.step()

    for step in (RENEW_S, RENEW_S, TTL_S - 2 * RENEW_S - 0.001):
        clock.advance(step)
        local_b.advance(step)
        b.step()
        assert not b.is_leader()
    clock.advance(0.001)  # the lock's expiry, by the store's clock
    b.step()
    assert b.is_leader()
    assert epoch_of(b) == 2


def test_leader_lapses_a_full_ttl_after_its_last_good_renewal_began(
    store: LockStore, clock: Clock
) -> None:
    """Renewals fail (store down) and each round takes time: the leader keeps acting as
    one until TTL after the start of its last successful renewal, then stops, before
    the store's lock can expire for anyone else."""
    a = elector(store, "a", clock)
    a.step()
    clock.advance(RENEW_S)
    renewal_began = clock()
    store.call_takes_s = 1.0  # the round trip of this renewal: the store sees it 1 s later
    a.step()
    store.call_takes_s = 0.0
    assert a.is_leader()

    store.down = True
    for _ in range(3):
        clock.advance(1.0)
        a.step()  # a failed round keeps the current term
        assert a.is_leader()
    clock.now = renewal_began + TTL_S - 0.001
    assert a.is_leader()
    clock.now = renewal_began + TTL_S
    assert not a.is_leader()
    assert a.token is None
    a.step()
    assert not a.is_leader()

    # The store's lock outlives the leader's local term: no overlap with a successor.
    store.down = False
    b = elector(store, "b", clock)
    b.step()
    assert not b.is_leader()
    clock.advance(1.0)  # the renewal reached the store 1 s after it began
    b.step()
    assert b.is_leader()


def test_lost_lock_is_noticed_at_the_next_renewal(store: LockStore, clock: Clock) -> None:
    """When the store says another owner has the lock, the old leader stops at once."""
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    a.step()
    clock.advance(TTL_S)  # a was paused past its TTL: b takes over
    b.step()
    assert b.is_leader()
    a.step()  # the renewal is refused, and the lock is held: a follows
    assert not a.is_leader()
    assert epoch_of(b) == 2


def test_release_lets_a_successor_in_at_once(store: LockStore, clock: Clock) -> None:
    """release() gives the lock up: the next contender's round takes it, no TTL to wait."""
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    a.step()
    b.step()
    assert not b.is_leader()
    a.release()
    assert not a.is_leader()
    b.step()
    assert b.is_leader()
    assert epoch_of(b) == 2


def test_epochs_grow_with_every_acquisition(store: LockStore, clock: Clock) -> None:
    """Takeovers by expiry and by release, and a re-acquisition by a former leader,
    each get a larger epoch."""
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    epochs = []
    a.step()
    epochs.append(epoch_of(a))
    clock.advance(TTL_S)  # a stopped renewing
    b.step()
    epochs.append(epoch_of(b))
    b.release()
    a.step()  # a's old term is over; it acquires anew
    epochs.append(epoch_of(a))
    a.release()
    a.step()
    epochs.append(epoch_of(a))
    assert epochs == [1, 2, 3, 4]
