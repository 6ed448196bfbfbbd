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
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import DeliveryCallback
from ledgerd.log.codec import decode_balance

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


def test_feed_publishes_one_message_per_account_to_its_partition() -> None:
    """Each balance goes to the feed topic keyed by user id, in the account's partition."""
    producer = FakeProducer()
    CacheFeed(producer, "feed").publish(BALANCES, PARTITION_OF)
    assert sorted((k, p) for _, k, _, p in producer.records) == [(b"1", 1), (b"2", 2), (b"3", 0)]
    assert {decode_balance(v) for _, _, v, _ in producer.records} == set(BALANCES.values())


def test_undelivered_feed_messages_are_counted_and_do_not_raise() -> None:
    """Delivery failures reported by a later poll are counted; nothing raises."""
    feed = CacheFeed(FakeProducer(error=LogUnavailable("broker down")), "feed")
    before = feed_failures()
    feed.publish(BALANCES, PARTITION_OF)
    feed.poll()
    assert feed_failures() == before + 3


def test_a_full_feed_queue_counts_the_rest_as_failed_and_carries_on() -> None:
    """When the producer refuses a message, the batch's remaining balances are counted
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
