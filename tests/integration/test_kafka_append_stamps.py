"""Kafka topics stamped by the broker, and what the consumer makes of it: with a real
Kafka and MariaDB, a consumer catching up a backlog reads no outcome for messages that
joined the log on time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)
from harness import fresh_mysql_store, services
from prometheus_client import REGISTRY

from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.log.base import LogRecord
from ledgerd.log.kafka import KafkaLog
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.relay import Relay

# A new producer's first publication took 0.5-1.1 s here (connection, producer id, linger):
# the window leaves it room, or the messages would count as appended late.
WINDOW_S = 3.0


@pytest.fixture
def kafka() -> Iterator[KafkaLog]:
    log = KafkaLog(services.kafka_bootstrap(), partition_count=3)
    yield log
    log.close()


def admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": services.kafka_bootstrap()})


def timestamp_type(topic: str) -> str:
    client = admin()  # kept until its answer came: a dropped client fails its futures
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    (future,) = client.describe_configs([resource]).values()
    return str(future.result()["message.timestamp.type"].value)


def test_topics_ledgerd_creates_are_stamped_by_the_broker(kafka: KafkaLog) -> None:
    topic = f"stamps-{uuid.uuid4().hex[:12]}"
    kafka.ensure_topics([topic])
    assert timestamp_type(topic) == "LogAppendTime"


def test_an_existing_topic_stamped_by_producers_is_switched_at_start(kafka: KafkaLog) -> None:
    """A topic made before ledgerd asked for broker stamps (or by hand) is switched by the
    next start; its partitions and records stay."""
    topic = f"stamps-old-{uuid.uuid4().hex[:12]}"
    client = admin()
    created = client.create_topics(
        [NewTopic(topic, 3, -1, config={"message.timestamp.type": "CreateTime"})]
    )
    for future in created.values():
        future.result()
    assert timestamp_type(topic) == "CreateTime"
    producer = kafka.producer()
    producer.publish(topic, b"k", b"before", partition=0)
    assert producer.flush(30.0) == 0
    kafka.ensure_topics([topic])
    assert timestamp_type(topic) == "LogAppendTime"
    before = kafka.last_record(topic, 0)
    assert before is not None and before.value == b"before"
    producer.publish(topic, b"k", b"after", partition=0)
    assert producer.flush(30.0) == 0
    producer.close()
    after = kafka.last_record(topic, 0)
    assert after is not None and after.value == b"after" and after.appended_at_ms > 0
    assert kafka.end_offsets(topic) == {0: 2, 1: 0, 2: 0}


def last_records(kafka: KafkaLog, topic: str) -> list[LogRecord]:
    found = [kafka.last_record(topic, partition) for partition in range(3)]
    return [record for record in found if record is not None]


def checked() -> float:
    return REGISTRY.get_sample_value("ledgerd_consumer_checked_messages_total") or 0.0


def test_a_backlog_appended_on_time_is_applied_without_reading_outcomes(kafka: KafkaLog) -> None:
    """Published right after acceptance, read once the window has passed: nothing is
    checked, everything applies once."""
    topic = f"backlog-{uuid.uuid4().hex[:12]}"
    kafka.ensure_topics([topic, f"{topic}-dlq"])
    requests = [
        ChangeRequest(f"d-{user}", user, "USD", ChangeType.DEPOSIT, SCALE) for user in range(1, 7)
    ]
    with fresh_mysql_store() as store:
        signer = MessageSigner(store.message_key())
        accepted_at_ms = int(time.time() * 1000)
        store.accept_requests([r.request_id for r in requests], lambda _: requests, accepted_at_ms)
        relay = Relay(store, kafka.producer(), signer, topic=topic, partition_count=3)
        relay.hand_off(requests, accepted_at_ms)
        relay.run_until_idle(sweep_min_age_s=3600)  # first publications only
        delays = [last.appended_at_ms - accepted_at_ms for last in last_records(kafka, topic)]
        assert all(0 <= d <= WINDOW_S * 1000 for d in delays), f"appended after {delays} ms"
        # Read later than the window after acceptance: the old rule checked every message.
        time.sleep(max(0.0, accepted_at_ms / 1000 + WINDOW_S + 0.2 - time.time()))
        config = ConsumerConfig(
            topic=topic, dlq_topic=f"{topic}-dlq", group_id=f"g-{topic}", poll_timeout_s=0.2,
            trust_window_s=WINDOW_S,
        )  # fmt: skip
        consumer = BatchConsumer(store, kafka, None, None, config, signer=signer)
        before = checked()
        deadline = time.monotonic() + 60
        try:
            while store.count_unfinished() and sum(store.count_unfinished().values()):
                assert time.monotonic() < deadline, "the backlog was not applied"
                consumer.run_once(0.2)
            consumer.drain()
        finally:
            consumer.close()
        assert checked() - before == 0
        assert [store.get_balances(u, "USD")[0].available for u in range(1, 7)] == [SCALE] * 6
