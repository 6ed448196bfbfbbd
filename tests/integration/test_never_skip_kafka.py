"""Nothing skipped with a real Kafka and MariaDB: records removed before they were applied
(retention, here DeleteRecords: the same effect, at once) and a topic deleted and created
again stop their partitions, with an alert; the other partitions apply on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from harness import fresh_mysql_store, services, wait_until
from prometheus_client import REGISTRY

from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.log.kafka import KafkaLog
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.relay import Relay
from ledgerd.store.base import Store

# partition_for_user(user, 3): user 1 is on partition 0, user 4 on partition 1.
USER_P0, USER_P1 = 1, 4


@dataclass
class Stack:
    store: Store
    log: KafkaLog
    admin: AdminClient
    topic: str

    def accept(self, *requests: tuple[str, int]) -> None:
        changes = [
            ChangeRequest(rid, user, "USD", ChangeType.DEPOSIT, SCALE) for rid, user in requests
        ]
        self.store.accept_requests([c.request_id for c in changes], lambda _: changes, 1000)

    def publish(self) -> None:
        """What the relay does with accepted rows: publish them, signed."""
        signer = MessageSigner(self.store.message_key())
        relay = Relay(self.store, self.log.producer(), signer, topic=self.topic, partition_count=3)
        relay.run_until_idle()

    def consumer(self) -> BatchConsumer:
        config = ConsumerConfig(
            topic=self.topic,
            dlq_topic=f"{self.topic}-dlq",
            group_id=f"g-{self.topic}",
            poll_timeout_s=0.2,
        )
        signer = MessageSigner(self.store.message_key())
        return BatchConsumer(self.store, self.log, None, None, config, signer=signer)

    def available(self, user_id: int) -> int:
        found = self.store.get_balances(user_id, "USD")
        return found[0].available if found else 0

    def ensure_topics(self) -> None:
        self.log.ensure_topics([self.topic, f"{self.topic}-dlq"])


def run_until(consumer: BatchConsumer, condition: object, what: str) -> None:
    def done() -> bool:
        consumer.run_once(0.2)
        return bool(condition())  # type: ignore[operator]

    wait_until(done, 60, what)
    consumer.drain()


@pytest.fixture
def stack() -> Iterator[Stack]:
    log = KafkaLog(services.kafka_bootstrap(), partition_count=3)
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap()})
    with fresh_mysql_store() as store:
        made = Stack(store, log, admin, f"never-skip-{uuid.uuid4().hex[:12]}")
        made.ensure_topics()
        yield made
    log.close()


def gap_gauge(partition: int) -> float | None:
    return REGISTRY.get_sample_value("ledgerd_partition_gap", {"partition": str(partition)})


def test_records_removed_before_they_were_applied_stop_their_partition(stack: Stack) -> None:
    """The consumer was down while a1..a3 arrived and the head of partition 0 (a1, a2) was
    removed: a3 is not applied (no jump), the position stays, partition 1 applies b0, and
    the stopped partition shows in the consumer, the gauge and the unfinished requests."""
    stack.accept(("a0", USER_P0))
    stack.publish()
    first = stack.consumer()
    run_until(first, lambda: stack.available(USER_P0) == SCALE, "a0 applied")
    first.close()
    stack.accept(("a1", USER_P0), ("a2", USER_P0), ("a3", USER_P0), ("b0", USER_P1))
    stack.publish()
    for future in stack.admin.delete_records([TopicPartition(stack.topic, 0, 3)]).values():
        future.result()
    second = stack.consumer()
    try:
        run_until(second, lambda: stack.available(USER_P1) == SCALE, "b0 applied")
        run_until(second, lambda: 0 in second.stopped_partitions, "partition 0 stopped")
        assert "records 1..2 were removed" in second.stopped_partitions[0]
        assert list(second.stopped_partitions) == [0]
        assert gap_gauge(0) == 1
        assert stack.available(USER_P0) == SCALE  # a3 waits behind the gap
        assert stack.store.get_positions(stack.topic)[0] == 1
        assert stack.store.oldest_unfinished_ms() is not None  # a1..a3 have no outcome
    finally:
        second.close()


def test_a_deleted_and_recreated_topic_is_detected_and_nothing_is_read_from_it(
    stack: Stack,
) -> None:
    """After the topic is deleted and created again (offsets from 0, another id), every
    partition the store had positions in stops at its claim: none of the new topic's
    records is applied from the old offsets, and no position moves backwards."""
    stack.accept(("a0", USER_P0), ("a1", USER_P0), ("b0", USER_P1))
    stack.publish()
    first = stack.consumer()
    run_until(
        first,
        lambda: stack.available(USER_P0) == 2 * SCALE and stack.available(USER_P1) == SCALE,
        "applied",
    )
    first.close()
    positions = dict(stack.store.get_positions(stack.topic))
    assert positions == {0: 2, 1: 1, 2: 0}
    stack.admin.delete_topics([stack.topic])[stack.topic].result()
    wait_until(lambda: stack.topic not in stack.admin.list_topics(timeout=5).topics, 30, "deleted")
    stack.ensure_topics()  # as `ledgerd migrate` (or a start) would
    stack.accept(("c0", USER_P0), ("c1", USER_P0), ("c2", USER_P0))
    stack.publish()
    second = stack.consumer()
    try:
        run_until(second, lambda: len(second.stopped_partitions) == 3, "every partition stopped")
        assert all("recreated" in why for why in second.stopped_partitions.values())
        assert stack.available(USER_P0) == 2 * SCALE  # c2 (new offset 2) was not applied
        assert stack.store.get_positions(stack.topic) == positions
    finally:
        second.close()
