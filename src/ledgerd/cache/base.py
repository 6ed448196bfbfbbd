"""The balance cache interface (in-process memory, Redis).

Writers put balances after the store committed them; a put only replaces an
entry with a lower version (last write wins by version), so late or
repeated updates can never move a balance backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ledgerd.domain.model import Account, Balance


class BalanceSink(Protocol):
    """Where the consumer hands committed balances: a cache, or an updater in front of one."""

    def put_many(self, balances: Iterable[Balance]) -> None: ...


class BalanceCache(Protocol):
    def get(self, account: Account) -> Balance | None:
        """The cached balance, or None when not cached.

        Raises:
            CacheUnavailable: the cache cannot be reached (readers fall back to the store).
        """

    def put_many(self, balances: Iterable[Balance]) -> None:
        """Store balances whose version is newer than the cached one."""

    def ping(self) -> None: ...

    def close(self) -> None: ...
