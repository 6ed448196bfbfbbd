"""The balance cache interface (in-process memory, Redis).

Writers put balances after the store committed them; a put only replaces an
entry with a lower version (last write wins by version), so late or
repeated updates can never move a balance backwards.

Only a balance read as the store's *current* state (a miss, an answer's
write-back, a full sync) may create an entry (``create=True``); every other
write (the cache feed, a replay, a late publish) only raises an entry the cache
holds. An entry that was evicted or deleted may have held a newer version than
such a write carries, so creating it could move reads back in time.

A cache that may hold entries older than versions the service already
answered (Redis after a restart, or after an answer failed to reach it) serves
no reads until a full sync has rewritten every balance and the fence granted a
lease (``ledgerd.cache.fence``).

The API reads through an ``AsyncBalanceReader`` (``BalanceCache.reader``), which
never blocks the event loop; the consumer, the cache updater and the write-back
of answers use the synchronous interface, on threads.

Negative entries: the service caches an account that has no stored balance as
its zero balance at version 0. Last write wins by version, so such an entry never
replaces a real balance, and the account's first real balance replaces it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Protocol

from ledgerd.domain.model import Account, Balance


class BalanceSink(Protocol):
    """Where the consumer hands committed balances: a cache, or an updater in front of one."""

    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None: ...


class FullSync(Protocol):
    """One full sync in progress: opened before the store is read, completed after."""

    def put_many(self, balances: Iterable[Balance]) -> None:
        """Write balances newer than the cached ones.

        Raises:
            CacheUnavailable: the cache failed; abandon this sync (close it).
        """

    def complete(self) -> None:
        """Every balance the store held when the sync began is written: serve reads again.

        Raises:
            CacheUnavailable: the cache failed; it stays unready.
        """

    def close(self) -> None: ...


class AsyncBalanceReader(Protocol):
    """The read path of a cache for one event loop: create, use and close it on that loop."""

    def get(self, account: Account) -> Awaitable[Balance | None]:
        """The cached balance (version 0 for a negative entry), or None when not cached or
        the cache is not ready. An awaitable, not necessarily a coroutine: a read that joins
        a pipelined batch costs one future, no task or coroutine frame.

        Raises:
            CacheUnavailable: the cache cannot be reached (readers fall back to the store);
                raised by the call or by the await.
        """

    async def close(self) -> None: ...


class BalanceCache(Protocol):
    def reader(self) -> AsyncBalanceReader:
        """A reader for the running event loop (it connects on first use)."""

    def get(self, account: Account) -> Balance | None:
        """The cached balance, or None when not cached or the cache is not ready.

        Raises:
            CacheUnavailable: the cache cannot be reached (readers fall back to the store).
        """

    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
        """Raise cached entries to these balances where their version is newer; with
        ``create``, also add the accounts not cached (only for balances just read as the
        store's current state: see the module docstring).

        Raises:
            CacheUnavailable: the cache cannot be reached or refused the write.
        """

    def serve_reads(self, ttl_s: float, *, renew: bool) -> bool:
        """Serve reads for ``ttl_s`` more seconds (the lease the fence granted). With
        ``renew``, only extend a lease that still runs: False when there is none (it ran
        out, or the cache lost its keys, say to a FLUSHDB), and a full sync must come
        first, since a write delayed in flight may have created an entry older than
        versions already answered while the entry was gone.

        Raises:
            CacheUnavailable: the cache cannot be reached.
        """

    def eviction_risk(self) -> str | None:
        """Why the cache could drop a real balance on its own (an eviction policy), or None.
        A cache at risk is granted no lease.

        Raises:
            CacheUnavailable: the cache cannot be reached.
        """

    def ready(self) -> bool:
        """Whether reads are served (no full sync is needed since the cache lost state).

        Raises:
            CacheUnavailable: the cache cannot be reached.
        """

    def begin_full_sync(self) -> FullSync:
        """Start a full sync; call before reading the store.

        Raises:
            CacheUnavailable: the cache cannot be reached.
        """

    def ping(self) -> None: ...

    def close(self) -> None: ...
