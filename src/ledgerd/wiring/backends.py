"""The backends a process works on, opened from their URLs: store (every shard), event
log, cache. Operator commands (``migrate``, ``audit``, ``shards``, ``dlq``) use these
without importing the server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledgerd.cache import BalanceCache, open_cache
from ledgerd.log import EventLog, open_log
from ledgerd.settings import Settings
from ledgerd.store import Store, open_store
from ledgerd.store.sharded import ShardedStore
from ledgerd.store.shards import Shard, check_shards, prepare_shards


@dataclass
class Backends:
    """The store, log and cache a process shares between its roles; closed last."""

    store: Store
    event_log: EventLog
    cache: BalanceCache

    def close(self) -> None:
        self.cache.close()
        self.event_log.close()
        self.store.close()


def shards_from_settings(settings: Settings) -> list[Shard]:
    """A store per configured shard (LEDGERD_STORE_SHARDS, else the one store URL),
    opened but not checked yet."""
    return [
        Shard(
            shard_id,
            url,
            open_store(
                url,
                connect_timeout_s=settings.db_connect_timeout_s,
                pool_size=settings.db_pool_size,
                queue_limit=settings.db_queue_limit,
                mysql_load_data=settings.mysql_load_data,
            ),
        )
        for shard_id, url in enumerate(settings.store_urls)
    ]


def store_over(shards: list[Shard], partition_count: int) -> Store:
    """The Store of a checked shard map."""
    if len(shards) == 1:
        return shards[0].store  # one shard: the database's own store, nothing in between
    return ShardedStore([shard.store for shard in shards], partition_count)


def store_from_settings(settings: Settings) -> Store:
    """The store of every shard, after checking each agrees with the configuration
    (writes nothing; ``open_backends`` and ``ledgerd migrate`` also migrate).

    Raises:
        ShardMismatch: a shard records another place in the shard map.
        StoreUnavailable: a shard cannot be reached.
    """
    return _open_store(settings, check_shards)


def _open_store(settings: Settings, check: Callable[[Sequence[Shard], int], object]) -> Store:
    """Every shard's store, once ``check`` (the shards, the partition count) passed; the
    connections are closed if it raises."""
    shards = shards_from_settings(settings)
    try:
        check(shards, settings.partitions)
    except Exception:
        for shard in shards:
            shard.store.close()
        raise
    return store_over(shards, settings.partitions)


def service_topics(settings: Settings) -> list[str]:
    """The topics ``ledgerd migrate`` (and a start) create: no client creates a topic by
    using it, so a deleted one stays deleted instead of coming back empty."""
    topics = [settings.topic, settings.dlq_topic]
    if settings.events:
        topics.append(settings.events_topic)  # same partition count: partition p feeds p
    return topics


def open_backends(settings: Settings) -> Backends:
    """Open store, log and cache from their URLs; check the shard map; create schema
    and topics."""
    store = _open_store(settings, prepare_shards)
    event_log = open_log(
        settings.log_url,
        data_dir=settings.data_dir,
        partition_count=settings.partitions,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    event_log.ensure_topics(service_topics(settings))
    cache = open_cache(
        settings.cache_url,
        max_entries=settings.cache_max_entries,
        key_prefix=settings.cache_key_prefix,
        negative_entries_max=settings.cache_negative_entries_max,
        read_write_gap_s=settings.cache_read_write_gap_ms / 1000,
    )
    return Backends(store, event_log, cache)
