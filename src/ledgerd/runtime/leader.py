"""Leader election: one process at a time runs the singleton jobs.

The lock is a store row (owner, epoch, expiry by the database clock). The
leader renews it every ``renew_interval_s``; others try to take it at the
same pace, so a dead leader is replaced within TTL + renewal interval. The
epoch grows with every acquisition and fences the holder's writes: jobs
that write re-check the lock inside their own transaction. Locally, the
leader stops acting as one a full TTL after its last successful renewal
began, before any other process can have taken over.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable

import structlog

from ledgerd import metrics
from ledgerd.errors import LedgerError
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.store.base import LockToken, Store
from ledgerd.support import failpoints

log = structlog.get_logger(__name__)

# One lock per family of singleton jobs, contended only by processes that run them.
OUTBOX_LOCK = "outbox"  # the relay's sweep: republishing stranded rows, deleting finished ones
CACHE_SYNC_LOCK = "cache-sync"  # the cache's periodic full sync


def default_owner() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Holds (or waits for) the named lock on its own thread."""

    def __init__(
        self,
        store: Store,
        *,
        name: str,
        owner: str | None = None,
        ttl_s: float = 5.0,
        renew_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        # Measures local validity (tests pass one they control); the store's expiry
        # uses the database clock.
        self._clock = clock
        self._name = name
        self.owner = owner or default_owner()
        self._ttl_ms = int(ttl_s * 1000)
        self._renew_interval_s = renew_interval_s
        self._token: LockToken | None = None
        self._valid_until = 0.0

    @property
    def name(self) -> str:
        return self._name

    @property
    def token(self) -> LockToken | None:
        """The held lock, or None when this process is not (surely) the leader."""
        token = self._token
        if token is None or self._clock() >= self._valid_until:
            return None
        return token

    def is_leader(self) -> bool:
        return self.token is not None

    def run(self, lifeline: Lifeline) -> None:
        """The loop, for the supervisor: renew or contend every renewal interval."""
        while not lifeline.stopping:
            lifeline.beat()
            failpoints.hit("leader.loop")
            self.step()
            lifeline.wait(self._renew_interval_s)

    def release(self) -> None:
        """Give the lock up (after the loop stopped) so a successor need not wait for the TTL;
        idempotent."""
        token, self._token = self._token, None
        if token is not None:
            try:
                self._store.release_lock(token)
                log.info("leader lock released", epoch=token.epoch)
            except LedgerError as exc:
                log.warning("leader lock not released; it will expire", error=str(exc))
        metrics.LEADER.labels(lock=self._name).set(0)

    def step(self) -> None:
        """One round: renew the held lock, or try to take it."""
        started = self._clock()
        try:
            if self._token is not None:
                if self._store.renew_lock(self._token, self._ttl_ms):
                    self._valid_until = started + self._ttl_ms / 1000
                else:
                    log.warning("leader lock lost", epoch=self._token.epoch)
                    self._token = None
            if self._token is None:
                epoch = self._store.acquire_lock(self._name, self.owner, self._ttl_ms)
                if epoch is not None:
                    self._token = LockToken(self._name, self.owner, epoch)
                    self._valid_until = started + self._ttl_ms / 1000
                    log.info("leader lock acquired", epoch=epoch, owner=self.owner)
        except LedgerError as exc:
            # Keep the current term; it lapses locally at _valid_until if renewals keep failing.
            log.warning("leader lock round failed", error=str(exc), retriable=exc.retriable)
        token = self.token
        metrics.LEADER.labels(lock=self._name).set(1 if token is not None else 0)
        if token is not None:
            metrics.LEADER_EPOCH.labels(lock=self._name).set(token.epoch)
