"""Names shared across processes: Redis key prefixes and the like, in one place."""

from __future__ import annotations

# Every Redis key starts with the deployment's prefix (LEDGERD_CACHE_KEY_PREFIX,
# default "ledgerd:"), so deployments can share one Redis.
DEFAULT_REDIS_PREFIX = "ledgerd:"
# One Redis hash per account: fields available, frozen, version.
REDIS_BALANCE_KEY = "balance:"
# Replay protection of signed requests (SET NX EX).
REDIS_NONCE_KEY = "nonce:"
# The serving lease: Redis serves reads only while this key exists (``ledgerd.cache.fence``).
REDIS_SERVING_KEY = "serving"
# Set while a full sync runs; its lease is granted only if this is still there (no FLUSHDB).
REDIS_FULL_SYNC_KEY = "full-sync"
# Counts negative entries created in the current window (bounded: ``ledgerd.cache.redis``).
REDIS_ABSENT_COUNT_KEY = "absent-count"
# The leader_locks row whose generation and lease fence the shared cache's reads.
CACHE_FENCE = "cache-fence"
