"""Nonce caches for replay protection: in memory (embedded), or Redis shared by all processes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import redis
from redis.exceptions import RedisError

from ledgerd.constants import DEFAULT_REDIS_PREFIX, REDIS_NONCE_KEY
from ledgerd.errors import CacheUnavailable


class MemoryNonceCache:
    """Nonces seen in this process, forgotten after their TTL; bounded in size."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def first_use(self, key_id: str, nonce: str, ttl_s: int) -> bool:
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


class RedisNonceCache:
    """``SET NX EX`` in Redis: a nonce is accepted once across every ledgerd process."""

    def __init__(self, url: str, prefix: str = DEFAULT_REDIS_PREFIX) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix + REDIS_NONCE_KEY

    def first_use(self, key_id: str, nonce: str, ttl_s: int) -> bool:
        """Raises: CacheUnavailable: Redis did not answer (the call is refused as UNAVAILABLE)."""
        try:
            return bool(self._client.set(f"{self._prefix}{key_id}:{nonce}", 1, nx=True, ex=ttl_s))
        except RedisError as exc:
            raise CacheUnavailable(f"redis nonce cache: {exc}") from exc
