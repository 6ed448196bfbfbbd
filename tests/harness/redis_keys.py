"""Removing a test's keys from the shared Redis.

Tests key everything under a prefix of their own, and the shared Redis holds every
other test's and benchmark's keys too (millions after a few bench runs). SCAN walks the
whole keyspace whatever the pattern; with redis-py's default COUNT of 10 that is one
round trip per ten keys (a 34 s teardown at 1.5 M keys), so this asks for big pages;
and even then the walk costs seconds, so tests that create and delete many prefixes
(contract/test_cache_*) keep their keys in a database of the shared Redis that servers
and benchmarks do not use, ``KEYS_TEST_DB``.
"""

from __future__ import annotations

import redis

from ledgerd.launch.serve_process import services

# Keys SCAN looks at per call: the server's work is the same, the round trips 10,000x fewer.
SCAN_COUNT = 100_000
# The shared Redis's database for tests that delete their keys afterwards (servers and
# benchmarks use database 0).
KEYS_TEST_DB = 1


def redis_url() -> str:
    """The shared Redis, in the database of tests that clean up after themselves."""
    return services.redis_url(KEYS_TEST_DB)


def delete_prefix(prefix: str) -> None:
    """Delete every key of ``redis_url()`` that starts with ``prefix``."""
    client = redis.Redis.from_url(redis_url())
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=SCAN_COUNT))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()
