"""After a commit: the order followers learn of it, and a cache feed that never blocks
or fails the batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from prometheus_client import REGISTRY

from ledgerd.consumer.feed import CacheFeed
from ledgerd.consumer.memory import BalanceMemory
from ledgerd.consumer.publish import CommitPublisher
from ledgerd.domain.model import Account, Balance
from ledgerd.domain.partitioning import user_key
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import DeliveryCallback
from ledgerd.log.codec import FEED_RECORD_BALANCES_MAX, decode_balances

BALANCES = {Account(u, "USD"): Balance(u, "USD", 5, 0, 2) for u in (1, 2, 3)}
PARTITION_OF = {account: account.user_id % 3 for account in BALANCES}


class FakeProducer:
    """Keeps published records; reports delivery (or ``error``) on poll."""

    def __init__(self, error: Exception | None = None, accept: int = 1_000_000) -> None:
        self.records: list[tuple[str, bytes, bytes, int | None]] = []
        self.error = error
        self.accept = accept
        self.pending: list[DeliveryCallback] = []

    def publish(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        *,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        if len(self.records) >= self.accept:
            raise LogUnavailable("producer queue is full")
        self.records.append((topic, key, value, partition))
        if on_delivery is not None:
            self.pending.append(on_delivery)

    def poll(self, timeout_s: float) -> None:
        pending, self.pending = self.pending, []
        for callback in pending:
            callback(self.error)

    def flush(self, timeout_s: float) -> int:
        self.poll(timeout_s)
        return 0

    def close(self) -> None:
        pass


def feed_failures() -> float:
    return REGISTRY.get_sample_value("ledgerd_cache_feed_failures_total") or 0.0


def feed_messages() -> float:
    return REGISTRY.get_sample_value("ledgerd_cache_feed_messages_total") or 0.0


def feed_records() -> float:
    return REGISTRY.get_sample_value("ledgerd_cache_feed_records_total") or 0.0


def test_followers_learn_in_order_sink_memory_feed_waiters() -> None:
    """The in-process sink, then memory, then the feed, and waiters last."""
    seen: list[str] = []
    memory = BalanceMemory(100)

    class Sink:
        def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
            assert memory.get(1, Account(1, "USD")) is None
            seen.append("sink")

    class Producer(FakeProducer):
        def publish(self, *args: object, **kwargs: object) -> None:
            assert memory.get(1, Account(1, "USD")) == BALANCES[Account(1, "USD")]
            seen.append("feed")

    class Hub:
        def publish(self, request_ids: Iterable[str]) -> None:
            seen.append("waiters")

    publisher = CommitPublisher(Sink(), memory, CacheFeed(Producer(), "feed"), Hub())  # type: ignore[arg-type]
    publisher.publish(BALANCES, PARTITION_OF, ["r1"])
    assert seen == ["sink", "feed", "feed", "feed", "waiters"]


def test_feed_publishes_each_partitions_balances_to_that_partition() -> None:
    """Each partition's balances go to the feed topic in that partition, keyed by the user id
    of its first balance."""
    producer = FakeProducer()
    CacheFeed(producer, "feed").publish(BALANCES, PARTITION_OF)
    assert sorted((k, p) for _, k, _, p in producer.records) == [(b"1", 1), (b"2", 2), (b"3", 0)]
    assert {t for t, _, _, _ in producer.records} == {"feed"}
    assert [b for _, _, v, _ in producer.records for b in decode_balances(v)] == list(
        BALANCES.values()
    )


def test_a_partitions_balances_of_one_batch_are_one_record() -> None:
    """A batch's balances of one partition, however many accounts, make a single record, and
    the balances fed are counted per balance, the records per record."""
    balances = {Account(u, c): Balance(u, c, u, 0, 1) for u in range(1, 301) for c in ("A", "B")}
    producer = FakeProducer()
    fed, records = feed_messages(), feed_records()
    CacheFeed(producer, "feed").publish(balances, dict.fromkeys(balances, 2))
    assert [(k, p) for _, k, _, p in producer.records] == [(b"1", 2)]
    assert decode_balances(producer.records[0][2]) == list(balances.values())
    assert (feed_messages(), feed_records()) == (fed + 600, records + 1)


def test_a_batch_beyond_the_record_bound_is_split_in_order() -> None:
    """More than FEED_RECORD_BALANCES_MAX balances of a partition take several records, each
    within the bound, keyed by its first user, holding the balances in their order; an
    undelivered record counts all its balances as failed."""
    count = 2 * FEED_RECORD_BALANCES_MAX + 5
    balances = {Account(u, "USD"): Balance(u, "USD", u, 0, 1) for u in range(1, count + 1)}
    producer = FakeProducer(error=LogUnavailable("broker down"))
    feed = CacheFeed(producer, "feed")
    failed = feed_failures()
    feed.publish(balances, dict.fromkeys(balances, 0))
    chunks = [decode_balances(v) for _, _, v, _ in producer.records]
    assert [len(chunk) for chunk in chunks] == [FEED_RECORD_BALANCES_MAX] * 2 + [5]
    assert [k for _, k, _, _ in producer.records] == [
        user_key(chunk[0].user_id) for chunk in chunks
    ]
    assert [b for chunk in chunks for b in chunk] == list(balances.values())
    feed.poll()
    assert feed_failures() == failed + count


def test_undelivered_feed_messages_are_counted_and_do_not_raise() -> None:
    """Delivery failures reported by a later poll are counted; nothing raises."""
    feed = CacheFeed(FakeProducer(error=LogUnavailable("broker down")), "feed")
    before = feed_failures()
    feed.publish(BALANCES, PARTITION_OF)
    feed.poll()
    assert feed_failures() == before + 3


def test_a_full_feed_queue_counts_the_rest_as_failed_and_carries_on() -> None:
    """When the producer refuses a record, the batch's remaining balances are counted
    as failed, without raising (the cache's full sync repairs them)."""
    feed = CacheFeed(FakeProducer(accept=1), "feed")
    before = feed_failures()
    feed.publish(BALANCES, PARTITION_OF)
    assert feed_failures() == before + 2


@pytest.mark.parametrize("cap", [1, 2])
def test_memory_stays_within_its_cap_per_partition(cap: int) -> None:
    """Past the cap, the oldest-loaded accounts of a partition are forgotten."""
    memory = BalanceMemory(cap)
    memory.reset([0])
    memory.remember(
        {Account(u, "USD"): Balance(u, "USD") for u in range(5)},
        {Account(u, "USD"): 0 for u in range(5)},
    )
    held = [u for u in range(5) if memory.get(0, Account(u, "USD")) is not None]
    assert held == list(range(5 - cap, 5))
