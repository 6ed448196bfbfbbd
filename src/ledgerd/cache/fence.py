"""The read fence: a shared cache serves reads only while nothing it lacks has been answered.

Reads never go back in time (docs/architecture.md §1) across processes. An API
process answers a balance read from the store only after writing it to the
shared cache. When that write fails (Redis unreachable from this process only,
a stall, a full Redis), the process cannot tell Redis anything, so it fences
Redis through the store instead:

* Redis serves reads only under a *lease*: a key with a short expiry that the
  read script checks. The cache-sync leader renews it only after the store
  granted it for the generation its last full sync covered
  (``Store.grant_lease``, a compare-and-set on the generation).
* A process whose write failed raises the generation (``Store.raise_fence``)
  and waits until the lease granted before the raise has run out. From then on
  Redis serves no read until a full sync that began after the raise (and so
  read the store after the answer was read) completes and a new lease is
  granted for the new generation.

A lease's expiry in the store is by the database clock; the leader sets the
Redis key's expiry from the same grant, shortened by the time the grant took,
so Redis never serves past the expiry a raising process waits for (plus
``margin_s`` for the key's trip to Redis). Concurrent failures in one process
share a raise that began after their own store reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledgerd import metrics
from ledgerd.constants import CACHE_FENCE
from ledgerd.store.base import Store


@dataclass(frozen=True, slots=True)
class _Raise:
    began: float  # local monotonic time the raise was sent
    serve_after: float  # local monotonic time the lease it outlived has surely ended


class CacheFence:
    """Raises the fence for answers the cache missed; grants the leader its leases."""

    def __init__(
        self,
        store: Store,
        *,
        name: str = CACHE_FENCE,
        margin_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._name = name
        self._margin_s = margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: _Raise | None = None

    def now(self) -> float:
        """The clock ``raise_after`` compares with (take it before reading the store)."""
        return self._clock()

    def raise_after(self, read_began: float) -> float:
        """Fence the cache for an answer read from the store at ``read_began`` (``now()``)
        that the cache may lack; returns the seconds to wait before answering.

        Blocking (call it on a thread).

        Raises:
            StoreUnavailable: the fence could not be raised; do not answer.
        """
        with self._lock:
            last = self._last
            if last is None or last.began <= read_began:
                began = self._clock()
                remaining_ms = self._store.raise_fence(self._name)
                metrics.CACHE_FENCE_RAISES.inc()
                serve_after = self._clock() + remaining_ms / 1000 + self._margin_s
                last = self._last = _Raise(began, serve_after if remaining_ms else 0.0)
        return max(0.0, last.serve_after - self._clock())

    def generation(self) -> int:
        """Raises: StoreUnavailable."""
        return self._store.fence_generation(self._name)

    def grant(self, generation: int, ttl_s: float) -> float | None:
        """A lease for a cache that holds everything the store held when ``generation`` was
        current: the seconds it lasts from now, or None if a newer generation was raised.

        Raises:
            StoreUnavailable.
        """
        began = self._clock()
        if not self._store.grant_lease(self._name, generation, int(ttl_s * 1000)):
            return None
        return ttl_s - (self._clock() - began)
