"""The balance cache: in-process memory, or Redis shared by every process."""

from __future__ import annotations

from ledgerd.cache.base import BalanceCache


def open_cache(
    url: str,
    *,
    max_entries: int = 1_000_000,
    key_prefix: str = "ledgerd:",
    negative_entries_max: int = 50_000,
    read_write_gap_s: float = 0.0,
) -> BalanceCache:
    """Open the cache a URL names: ``memory:`` or ``redis://host:port/db``.

    Raises:
        ValueError: the URL's scheme is not a known cache.
    """
    if url.startswith("memory:"):
        from ledgerd.cache.memory import MemoryCache

        return MemoryCache(max_entries)
    if url.startswith("redis://"):
        from ledgerd.cache.redis import RedisCache

        return RedisCache(
            url,
            prefix=key_prefix,
            negative_entries_max=negative_entries_max,
            read_write_gap_s=read_write_gap_s,
        )
    raise ValueError(f"unknown cache URL {url!r}; use memory: or redis://host:port/db")


__all__ = ["BalanceCache", "open_cache"]
