"""Nonce caches for replay protection: in memory (embedded), or Redis shared by all processes.

Both are async: the check runs on the API's event loop, and the Redis one must
not block it. Concurrent checks share one pipelined connection
(``ledgerd.cache.pipelined``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import hiredis

from ledgerd.cache.pipelined import PipelinedRedis, pack
from ledgerd.constants import DEFAULT_REDIS_PREFIX, REDIS_NONCE_KEY
from ledgerd.errors import CacheUnavailable


class MemoryNonceCache:
    """Nonces seen in this process, forgotten after their TTL; bounded in size."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    async def first_use(self, key_id: str, nonce: str, ttl_s: int) -> bool:
        now = time.monotonic()
        with self._lock:
            # Entries are in insertion order and share one TTL, so expired ones lead.
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            if (key_id, nonce) in self._seen:
                return False
            if len(self._seen) >= self._max_entries:
                # Full of live nonces: refusing is safer than forgetting one early.
                return False
            self._seen[(key_id, nonce)] = now + ttl_s
            return True

    async def close(self) -> None:
        return None


class RedisNonceCache:
    """``SET NX EX`` in Redis: a nonce is accepted once across every ledgerd process.

    Create it anywhere; it connects on first use, on the loop that uses it.
    """

    def __init__(self, url: str, prefix: str = DEFAULT_REDIS_PREFIX) -> None:
        self._connection = PipelinedRedis(url, timeout_s=0.5, name="redis nonce cache")
        self._prefix = prefix + REDIS_NONCE_KEY

    async def first_use(self, key_id: str, nonce: str, ttl_s: int) -> bool:
        """Raises: CacheUnavailable: Redis did not answer (the call is refused as UNAVAILABLE)."""
        reply = await self._connection.execute(
            pack("SET", f"{self._prefix}{key_id}:{nonce}", 1, "NX", "EX", ttl_s)
        )
        if isinstance(reply, hiredis.ReplyError):
            raise CacheUnavailable(f"redis nonce cache: {reply}")
        return bool(reply == "OK")

    async def close(self) -> None:
        await self._connection.close()
