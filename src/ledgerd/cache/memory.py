"""The in-process balance cache: a bounded LRU dict, last write wins by version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from ledgerd.domain.model import Account, Balance


class MemoryCache:
    """BalanceCache in this process's memory; evicts the least recently used."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Account, Balance] = OrderedDict()
        # Writers run on the consumer thread, readers on the API's.
        self._lock = threading.Lock()

    def get(self, account: Account) -> Balance | None:
        with self._lock:
            balance = self._entries.get(account)
            if balance is not None:
                self._entries.move_to_end(account)
            return balance

    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
        """Raise entries to newer versions; with ``create``, add missing ones (an evicted
        entry may have held a newer version than a historical balance carries)."""
        with self._lock:
            for balance in balances:
                account = balance.account
                cached = self._entries.get(account)
                if cached is None:
                    if not create:
                        continue
                elif cached.version >= balance.version:
                    continue
                self._entries[account] = balance
                self._entries.move_to_end(account)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def reader(self) -> MemoryReader:
        return MemoryReader(self)

    def ready(self) -> bool:
        """Always: this process's memory holds nothing older than what it was given."""
        return True

    def serve_reads(self, ttl_s: float, *, renew: bool) -> bool:
        """Nothing to lease: only this process reads and writes its memory."""
        return True

    def eviction_risk(self) -> str | None:
        """None: evicting a balance here only makes its next read miss (writes that may be
        historical never create an entry)."""
        return None

    def begin_full_sync(self) -> MemoryFullSync:
        return MemoryFullSync(self)

    def __len__(self) -> int:
        return len(self._entries)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._entries.clear()


class MemoryFullSync:
    """A full sync into memory: plain writes; the memory cache is always ready."""

    def __init__(self, cache: MemoryCache) -> None:
        self._cache = cache

    def put_many(self, balances: Iterable[Balance]) -> None:
        self._cache.put_many(balances, create=True)

    def complete(self) -> None:
        return None

    def close(self) -> None:
        return None


class MemoryReader:
    """AsyncBalanceReader on the memory cache: a dict lookup needs no waiting."""

    def __init__(self, cache: MemoryCache) -> None:
        self._cache = cache

    async def get(self, account: Account) -> Balance | None:
        return self._cache.get(account)

    async def close(self) -> None:
        return None
