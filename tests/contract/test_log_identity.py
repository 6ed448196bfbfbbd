"""Partition identity and gaps, on every event log; what only Kafka can do (retention,
DeleteRecords, deleting a topic) on Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from harness import services, wait_until
from test_log_contract import publish_all, read_all

from ledgerd.errors import LogUnavailable
from ledgerd.log.base import EventLog, LogConsumer, LogRecord
from ledgerd.log.kafka import KafkaLog


@pytest.fixture
def kafka() -> Iterator[KafkaLog]:
    log = KafkaLog(services.kafka_bootstrap(), partition_count=3)
    yield log
    log.close()


@pytest.fixture
def admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": services.kafka_bootstrap()})


def delete_records_before(admin: AdminClient, topic: str, partition: int, offset: int) -> None:
    """What retention does to the head of a partition, at once (DeleteRecords)."""
    for future in admin.delete_records([TopicPartition(topic, partition, offset)]).values():
        future.result()


def delete_topic(admin: AdminClient, topic: str) -> None:
    admin.delete_topics([topic])[topic].result()
    wait_until(lambda: topic not in admin.list_topics(timeout=5).topics, 30, f"{topic} deleted")


def starting_at(log: EventLog, topic: str, starts: Mapping[int, int], group: str) -> LogConsumer:
    consumer = log.consumer(group)

    def on_assign(partitions: Sequence[int]) -> Mapping[int, int]:
        return {p: starts.get(p, 0) for p in partitions}

    consumer.subscribe(topic, on_assign, lambda _: None)
    return consumer


def test_partition_identity_names_the_topic_and_the_offsets_it_holds(
    event_log: EventLog, topic: str
) -> None:
    """A stable topic id, the oldest offset held and the end, per partition."""
    event_log.ensure_topics([topic])
    publish_all(event_log, topic, [(0, b"a"), (0, b"b"), (0, b"c")])
    first = event_log.partition_identity(topic, 0)
    assert first.topic_id and (first.start_offset, first.end_offset) == (0, 3)
    empty = event_log.partition_identity(topic, 1)
    assert empty.topic_id == first.topic_id
    assert (empty.start_offset, empty.end_offset) == (0, 0)
    assert event_log.partition_identity(topic, 0) == first


def test_deleted_records_move_the_start_and_a_consumer_reports_the_gap(
    kafka: KafkaLog, admin: AdminClient, topic: str
) -> None:
    """After DeleteRecords below 5, a consumer asked to read from 2 gets no record of the
    partition (no jump to 5) and reports offset 2 as a gap; other partitions read on."""
    kafka.ensure_topics([topic])
    publish_all(kafka, topic, [(0, f"v{i}".encode()) for i in range(10)] + [(1, b"other")])
    delete_records_before(admin, topic, 0, 5)
    assert kafka.partition_identity(topic, 0).start_offset == 5
    consumer = starting_at(kafka, topic, {0: 2}, f"g-{topic}")
    records: list[LogRecord] = []
    gaps: dict[int, int] = {}

    def gap_reported() -> bool:
        records.extend(consumer.poll_batch(10, 0.2))
        gaps.update(consumer.gaps())
        return bool(gaps)

    try:
        wait_until(gap_reported, 30, "the gap reported")
        records += read_all(consumer, 10, timeout_s=1.0)
        assert gaps == {0: 2}
        assert [(r.partition, r.value) for r in records] == [(1, b"other")]
    finally:
        consumer.close()


def test_a_consumer_that_may_skip_lost_records_goes_on_from_the_oldest(
    kafka: KafkaLog, admin: AdminClient, topic: str
) -> None:
    """skip_lost_records (derived data): the same position resumes at the oldest record."""
    kafka.ensure_topics([topic])
    publish_all(kafka, topic, [(0, f"v{i}".encode()) for i in range(10)])
    delete_records_before(admin, topic, 0, 5)
    consumer = kafka.consumer(f"g-{topic}", skip_lost_records=True)
    consumer.subscribe(topic, lambda ps: dict.fromkeys(ps, 2), lambda _: None)
    try:
        assert [r.offset for r in read_all(consumer, 5)] == [5, 6, 7, 8, 9]
    finally:
        consumer.close()


def test_a_recreated_topic_has_another_id(kafka: KafkaLog, admin: AdminClient, topic: str) -> None:
    """Deleted and created again, a topic is told apart by its id (offsets start over)."""
    kafka.ensure_topics([topic])
    publish_all(kafka, topic, [(0, b"a")])
    before = kafka.partition_identity(topic, 0)
    delete_topic(admin, topic)
    kafka.ensure_topics([topic])
    after = wait_until(
        lambda: kafka.partition_identity(topic, 0), 30, "the new topic", ignoring=(LogUnavailable,)
    )
    assert after.topic_id != before.topic_id and after.end_offset == 0


def test_publishing_to_a_missing_topic_does_not_create_it(
    kafka: KafkaLog, admin: AdminClient
) -> None:
    """Clients never create topics by using them: a record for a missing topic is not
    delivered, and the topic does not appear."""
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    producer = kafka.producer()
    reports: list[Exception | None] = []
    producer.publish(missing, b"k", b"v", partition=0, on_delivery=reports.append)
    assert producer.flush(1.0) == 1
    assert missing not in admin.list_topics(timeout=5).topics
    # Give up on the record now rather than after close()'s 10 s flush.
    producer._producer.purge()
    producer.flush(0)
    assert len(reports) == 1 and reports[0] is not None
    producer.close()
    assert missing not in admin.list_topics(timeout=5).topics
