"""The cache updater over every log backend: it consumes the cache feed into the cache; the
leader repairs it by full syncs; its supervisor restarts it after a crash."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
from harness.redis_keys import delete_prefix, redis_url
from prometheus_client import REGISTRY

from ledgerd.cache.base import BalanceCache, FullSync
from ledgerd.cache.memory import MemoryCache
from ledgerd.cache.redis import RedisCache
from ledgerd.cache.updater import CacheUpdater
from ledgerd.consumer.feed import CacheFeed
from ledgerd.domain.model import Account, Balance
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import CacheUnavailable
from ledgerd.log.base import EventLog
from ledgerd.log.codec import encode_balance, encode_balances
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.runtime.supervisor import Lifeline, Policy, Supervisor
from ledgerd.support import failpoints


class FlakyCache:
    """A MemoryCache that refuses writes while ``down`` (a cache outage)."""

    def __init__(self) -> None:
        self.inner = MemoryCache()
        self.down = False

    def get(self, account: Account) -> Balance | None:
        return self.inner.get(account)

    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
        if self.down:
            raise CacheUnavailable("flaky cache is down")
        self.inner.put_many(balances, create=create)

    def serve_reads(self, ttl_s: float, *, renew: bool) -> bool:
        return True

    def eviction_risk(self) -> str | None:
        return None

    def ready(self) -> bool:
        if self.down:
            raise CacheUnavailable("flaky cache is down")
        return True

    def begin_full_sync(self) -> FullSync:
        if self.down:
            raise CacheUnavailable("flaky cache is down")
        return self.inner.begin_full_sync()

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


def publish(log: EventLog, topic: str, balances: list[Balance]) -> None:
    log.ensure_topics([topic])
    producer = log.producer()
    for b in balances:
        partition = partition_for_user(b.user_id, log.partition_count)
        producer.publish(topic, str(b.user_id).encode(), encode_balance(b), partition=partition)
    assert producer.flush(30.0) == 0
    producer.close()


def updater(cache: BalanceCache, log: EventLog, topic: str, **options: object) -> CacheUpdater:
    return CacheUpdater(cache, log, topic=topic, group_id=f"g-{topic}", **options)  # type: ignore[arg-type]


def drain(made: CacheUpdater, want: int, timeout_s: float = 30.0) -> int:
    """run_until_idle until ``want`` records were polled (Kafka assigns partitions lazily)."""
    seen, deadline = 0, time.monotonic() + timeout_s
    while seen < want and time.monotonic() < deadline:
        seen += made.run_until_idle(poll_timeout_s=0.2)
    return seen


def b(user: int, version: int) -> Balance:
    return Balance(user, "USD", version, 0, version)


def known(cache: BalanceCache, *users: int) -> None:
    """The cache holds these accounts (as negative entries): feed writes may raise them."""
    cache.put_many([Balance(user, "USD") for user in users], create=True)


def test_feed_balances_raise_cached_entries_to_their_newest_version(
    event_log: EventLog, topic: str
) -> None:
    """Balances on the feed, versions out of order, raise the entries the cache holds to their
    newest version, and create none (the feed may replay old versions: a read that misses
    reads the store instead)."""
    feed = [b(1, 1), b(2, 4), b(1, 3), b(2, 2), b(3, 1), b(1, 2)]
    publish(event_log, topic, feed)
    cache = MemoryCache()
    known(cache, 1, 2)
    made = updater(cache, event_log, topic)
    assert drain(made, len(feed)) == len(feed)
    assert [cache.get(Account(u, "USD")) for u in (1, 2, 3)] == [b(1, 3), b(2, 4), None]
    made.close()


def test_a_batch_of_one_partition_is_one_record_that_feeds_every_balance(
    event_log: EventLog, topic: str
) -> None:
    """The consumer's feed publishes a batch's N balances of one partition as one record in
    that partition (the topic's offsets say so), and the updater writes all N from it."""
    users = [u for u in range(1, 400) if partition_for_user(u, event_log.partition_count) == 1]
    balances = {Account(u, "USD"): b(u, 2) for u in users}
    event_log.ensure_topics([topic])
    feed = CacheFeed(event_log.producer(), topic)
    feed.publish(balances, dict.fromkeys(balances, 1))
    feed.close()
    assert dict(event_log.end_offsets(topic)) == {0: 0, 1: 1, 2: 0}
    cache = MemoryCache()
    known(cache, *users)
    made = updater(cache, event_log, topic)
    assert drain(made, 1) == 1
    assert [cache.get(account) for account in balances] == list(balances.values())
    made.close()


def test_batch_records_and_older_single_balance_records_mix_newest_wins(
    event_log: EventLog, topic: str
) -> None:
    """During a rolling upgrade the feed holds both formats: the updater reads both and keeps
    each account's newest version, whichever record carried it."""
    event_log.ensure_topics([topic])
    producer = event_log.producer()
    partition = partition_for_user(1, event_log.partition_count)
    records = [
        encode_balances([b(1, 1), b(2, 5)]),
        encode_balance(b(1, 3)),
        encode_balance(b(2, 4)),
        encode_balances([b(1, 2), b(2, 6)]),
    ]
    for value in records:
        producer.publish(topic, b"1", value, partition=partition)
    assert producer.flush(30.0) == 0
    producer.close()
    cache = MemoryCache()
    known(cache, 1, 2)
    made = updater(cache, event_log, topic)
    assert drain(made, len(records)) == len(records)
    assert [cache.get(Account(u, "USD")) for u in (1, 2)] == [b(1, 3), b(2, 6)]
    made.close()


def test_an_undecodable_record_is_skipped_counted_and_committed(tmp_path: Path, topic: str) -> None:
    """A record neither format decodes is skipped with the poison metric; the records around
    it still reach the cache and the offsets move past it."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    log.ensure_topics([topic])
    producer = log.producer()
    for value in (encode_balances([b(1, 1)]), b'["balances",[1,2],["1"]]', encode_balance(b(1, 2))):
        producer.publish(topic, b"1", value, partition=0)
    assert producer.flush(30.0) == 0
    producer.close()
    cache = MemoryCache()
    known(cache, 1)
    poison = REGISTRY.get_sample_value("ledgerd_cache_feed_poison_total") or 0.0
    made = updater(cache, log, topic)
    assert made.run_until_idle() == 3
    assert cache.get(Account(1, "USD")) == b(1, 2)
    assert REGISTRY.get_sample_value("ledgerd_cache_feed_poison_total") == poison + 1
    assert log.consumer(f"g-{topic}").committed(topic, [0]) == {0: 3}
    made.close()
    log.close()


def test_a_poll_asks_for_about_batch_max_balances(tmp_path: Path, topic: str) -> None:
    """Once records were seen to carry 100 balances, a poll asks for as many records as hold
    about batch_max_balances, not that many records (a backlog is written in bounded steps)."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    log.ensure_topics([topic])
    producer = log.producer()
    value = encode_balances([b(u, 1) for u in range(100)])

    def publish_records(per_partition: int) -> None:
        for _ in range(per_partition):
            for partition in range(3):
                producer.publish(topic, b"1", value, partition=partition)
        assert producer.flush(30.0) == 0

    publish_records(1)
    made = updater(MemoryCache(), log, topic, batch_max_balances=900)
    assert made.feed_once(0.0) == 3
    publish_records(10)
    assert [made.feed_once(0.0) for _ in range(5)] == [9, 9, 9, 3, 0]
    producer.close()
    made.close()
    log.close()


def test_offsets_move_only_after_the_cache_write(tmp_path: Path, topic: str) -> None:
    """While the cache is down nothing is committed; a new updater then re-reads everything."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    publish(log, topic, [b(1, 1), b(2, 1), b(3, 1)])
    cache = FlakyCache()
    known(cache, 1, 2, 3)
    cache.down = True
    first = updater(cache, log, topic)
    with pytest.raises(CacheUnavailable):
        first.run_until_idle()
    assert not first.healthy
    first.close()  # leaves the group without having committed
    second = updater(cache, log, topic)
    with pytest.raises(CacheUnavailable):
        second.run_until_idle()
    cache.down = False
    assert second.run_until_idle() == 0  # the held batch is written, nothing new polled
    assert second.healthy
    assert all(cache.get(Account(u, "USD")) == b(u, 1) for u in (1, 2, 3))
    consumer = log.consumer(f"g-{topic}")
    assert sum(consumer.committed(topic, [0, 1, 2]).values()) == 3
    second.close()
    log.close()


def test_written_offsets_are_committed_once_per_interval_and_when_the_feed_is_idle(
    tmp_path: Path, topic: str
) -> None:
    """A write is not a commit each (a broker request each, issue 22): the offsets past what
    was written reach the log at most once per commit_interval_s, at once when a poll finds
    nothing new, and when the updater closes."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    log.ensure_topics([topic])
    producer = log.producer()

    def feed(version: int) -> None:
        producer.publish(topic, b"1", encode_balances([b(1, version)]), partition=0)
        assert producer.flush(30.0) == 0

    def committed() -> int:
        return log.consumer(f"g-{topic}").committed(topic, [0])[0]

    cache = MemoryCache()
    known(cache, 1)
    made = updater(cache, log, topic, commit_interval_s=3600.0)
    feed(1)
    assert made.feed_once(0.0) == 1
    assert committed() == 1  # the first write: no commit was sent yet
    feed(2)
    assert made.feed_once(0.0) == 1
    assert cache.get(Account(1, "USD")) == b(1, 2)
    assert committed() == 1  # written; the next commit is not due
    assert made.feed_once(0.0) == 0
    assert committed() == 2  # idle: the log's offsets catch up
    feed(3)
    assert made.feed_once(0.0) == 1
    made.close()
    assert committed() == 3
    producer.close()
    log.close()


def test_cache_coming_back_triggers_a_full_sync(tmp_path: Path, topic: str) -> None:
    """After a write failure, the next success schedules a full sync from the store."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    stored = [b(9, 5)]
    syncs: list[int] = []

    def source() -> Iterator[Balance]:
        syncs.append(1)
        yield from stored

    cache = FlakyCache()
    made = updater(cache, log, topic, full_sync_source=source)
    made.run_until_idle()
    assert len(syncs) == 1  # a fresh updater syncs once
    publish(log, topic, [b(1, 1)])
    cache.down = True
    with pytest.raises(CacheUnavailable):
        made.run_until_idle()
    cache.down = False
    made.run_until_idle()
    assert len(syncs) == 2
    assert cache.get(Account(9, "USD")) == b(9, 5)
    made.close()
    log.close()


def test_full_sync_runs_only_where_allowed(tmp_path: Path, topic: str) -> None:
    """A follower never runs the full sync (only the leader of the cache sync lock)."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    syncs: list[int] = []

    def source() -> Iterator[Balance]:
        syncs.append(1)
        yield from ()

    made = updater(
        MemoryCache(), log, topic, full_sync_source=source, may_run_full_sync=lambda: False
    )
    made.run_until_idle()
    assert syncs == []
    made.close()
    log.close()


def test_leader_repairs_a_redis_that_lost_its_state(tmp_path: Path, topic: str) -> None:
    """Redis not ready (restart): the sync loop notices within its check interval and repairs."""
    prefix = f"ledgerd-updater-{uuid.uuid4().hex[:10]}:"
    cache = RedisCache(redis_url(), prefix=prefix)
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    made = updater(
        cache, log, topic, full_sync_source=lambda: iter([b(5, 7)]), readiness_check_interval_s=0.05
    )
    lifeline = Lifeline("cache-sync")
    thread = threading.Thread(target=made.run_full_sync, args=(lifeline,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while cache.get(Account(5, "USD")) != b(5, 7):
            assert time.monotonic() < deadline, "first full sync never happened"
            time.sleep(0.02)
        admin = redis.Redis.from_url(redis_url())
        admin.script_flush("SYNC")  # what a restart does to the script cache
        admin.close()
        deadline = time.monotonic() + 10
        while cache.get(Account(5, "USD")) != b(5, 7):
            assert time.monotonic() < deadline, "no full sync after Redis lost its state"
            time.sleep(0.02)
    finally:
        lifeline.stop()
        made.wake()
        thread.join()
        made.close()
        log.close()
        delete_prefix(prefix)
        cache.close()


def test_feed_loop_stops_when_its_lifeline_stops(tmp_path: Path, topic: str) -> None:
    """run_feed writes as records arrive and returns once asked to stop."""
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    cache = MemoryCache()
    known(cache, 4)
    made = updater(cache, log, topic, poll_timeout_s=0.05)
    lifeline = Lifeline("cache-feed")
    thread = threading.Thread(target=made.run_feed, args=(lifeline,))
    thread.start()
    publish(log, topic, [b(4, 2)])
    deadline = time.monotonic() + 10
    while cache.get(Account(4, "USD")) != b(4, 2):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    lifeline.stop()
    thread.join(10)
    assert not thread.is_alive()
    made.close()
    log.close()


def test_a_crashed_feed_loop_is_restarted_and_keeps_writing(tmp_path: Path, topic: str) -> None:
    """cache_updater.loop raises once under a supervisor: the loop restarts and the feed still
    reaches the cache."""
    failpoints.configure("cache_updater.loop=1*error")
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    cache = MemoryCache()
    known(cache, 6)
    made = updater(cache, log, topic, poll_timeout_s=0.05)
    supervisor = Supervisor(Policy(backoff_base_s=0.001))
    supervisor.add_thread("cache_updater.feed", made.run_feed)
    supervisor.start()
    try:
        publish(log, topic, [b(6, 3)])
        deadline = time.monotonic() + 10
        while cache.get(Account(6, "USD")) != b(6, 3):
            assert time.monotonic() < deadline, "the restarted loop never wrote the feed"
            time.sleep(0.02)
        detail = supervisor.health()["cache_updater.feed"].detail
    finally:
        failpoints.configure("")
        asyncio.run(supervisor.stop_all())
        made.close()
        log.close()
    assert "FailpointError" in detail
