"""The cache updater role's components: a shared cache fed from the feed topic, and its
periodic full sync from the store (run by the holder of the cache-sync lock)."""

from __future__ import annotations

import asyncio

from ledgerd.cache.fence import CacheFence
from ledgerd.cache.updater import CacheUpdater
from ledgerd.runtime.leader import CACHE_SYNC_LOCK
from ledgerd.runtime.supervisor import Child
from ledgerd.store.scan import iter_balances
from ledgerd.wiring.parts import Parts


def declare_cache_updater(parts: Parts) -> None:
    settings, backends = parts.settings, parts.backends
    updater = CacheUpdater(
        backends.cache,
        backends.event_log,
        topic=settings.cache_feed_topic,
        group_id=settings.cache_updater_group,
        full_sync_source=lambda: iter_balances(backends.store),
        full_sync_interval_s=settings.cache_full_sync_interval_s,
        may_run_full_sync=parts.elector(CACHE_SYNC_LOCK).is_leader,
        fence=CacheFence(backends.store),
        lease_ttl_s=settings.cache_lease_ttl_s,
    )
    # Closed with the feed, which stops after the sync (registered before it).
    parts.supervisor.add(
        Child(
            "cache_updater.feed",
            thread=updater.run_feed,
            close=lambda: asyncio.to_thread(updater.close),
        )
    )
    parts.supervisor.add(
        Child("cache_updater.sync", thread=updater.run_full_sync, wake=updater.wake)
    )
    parts.probes["cache_updater"] = lambda: (
        updater.healthy,
        "ok" if updater.healthy else "degraded: cache writes failing",
    )
