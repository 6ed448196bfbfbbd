"""The EventLog interface's contract, run against every event-log backend."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ledgerd.domain.partitioning import murmur2
from ledgerd.log.base import EventLog, LogConsumer, LogRecord

GROUP = "contract-group"


def publish_all(
    log: EventLog, topic: str, items: Sequence[tuple[int, bytes]]
) -> list[Exception | None]:
    producer = log.producer()
    reports: list[Exception | None] = []
    for partition, value in items:
        producer.publish(
            topic,
            b"k",
            value,
            partition=partition,
            headers=[("h", b"v")],
            on_delivery=reports.append,
        )
    assert producer.flush(30.0) == 0
    producer.close()
    return reports


def read_all(consumer: LogConsumer, want: int, timeout_s: float = 30.0) -> list[LogRecord]:
    records: list[LogRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < want and time.monotonic() < deadline:
        records += consumer.poll_batch(want - len(records), 0.5)
    return records


def subscribe(
    log: EventLog, topic: str, starts: Mapping[int, int] | None = None
) -> tuple[LogConsumer, list[Sequence[int]]]:
    consumer = log.consumer(GROUP + topic)
    assigned: list[Sequence[int]] = []

    def on_assign(partitions: Sequence[int]) -> Mapping[int, int]:
        assigned.append(list(partitions))
        return {p: (starts or {}).get(p, 0) for p in partitions}

    consumer.subscribe(topic, on_assign, lambda _: None)
    return consumer, assigned


def test_published_records_are_delivered_and_read_in_order(event_log: EventLog, topic: str) -> None:
    """Every publish gets a clean delivery report; each partition reads back in offset order."""
    event_log.ensure_topics([topic])
    reports = publish_all(event_log, topic, [(i % 3, f"v{i}".encode()) for i in range(30)])
    assert reports == [None] * 30
    consumer, assigned = subscribe(event_log, topic)
    records = read_all(consumer, 30)
    consumer.close()
    assert sorted(p for batch in assigned for p in batch) == [0, 1, 2]
    assert len(records) == 30
    for partition in range(3):
        mine = [r for r in records if r.partition == partition]
        assert [r.offset for r in mine] == list(range(10))
        assert [r.value for r in mine] == [f"v{i}".encode() for i in range(partition, 30, 3)]
    assert records[0].key == b"k" and ("h", b"v") in records[0].headers
    assert event_log.end_offsets(topic) == {0: 10, 1: 10, 2: 10}


def test_consumer_resumes_from_the_offsets_on_assign_returns(
    event_log: EventLog, topic: str
) -> None:
    """The offsets returned by on_assign are where reading starts."""
    event_log.ensure_topics([topic])
    publish_all(event_log, topic, [(0, f"v{i}".encode()) for i in range(10)])
    consumer, _ = subscribe(event_log, topic, starts={0: 7})
    records = read_all(consumer, 3)
    consumer.close()
    assert [(r.partition, r.offset) for r in records] == [(0, 7), (0, 8), (0, 9)]


def test_seek_rereads_a_partition(event_log: EventLog, topic: str) -> None:
    """After seek, the partition is read again from the given offset."""
    event_log.ensure_topics([topic])
    publish_all(event_log, topic, [(1, b"a"), (1, b"b")])
    consumer, _ = subscribe(event_log, topic)
    assert [r.value for r in read_all(consumer, 2)] == [b"a", b"b"]
    consumer.seek(1, 0)
    assert [r.value for r in read_all(consumer, 2)] == [b"a", b"b"]
    consumer.close()


def test_paused_partitions_are_not_read_until_resumed(event_log: EventLog, topic: str) -> None:
    """pause stops fetching a partition; resume continues where it stopped."""
    event_log.ensure_topics([topic])
    consumer, _ = subscribe(event_log, topic)
    read_all(consumer, 1, timeout_s=1.0)  # join and get the assignment
    consumer.pause([2])
    publish_all(event_log, topic, [(2, b"held"), (0, b"free")])
    assert [r.value for r in read_all(consumer, 2, timeout_s=3.0)] == [b"free"]
    consumer.resume([2])
    assert [r.value for r in read_all(consumer, 1)] == [b"held"]
    consumer.close()


def test_unpartitioned_publish_uses_kafkas_murmur2_of_the_key(
    event_log: EventLog, topic: str
) -> None:
    """Without an explicit partition a record lands where Kafka's default partitioner puts it."""
    event_log.ensure_topics([topic])
    producer = event_log.producer()
    keys = [str(user).encode() for user in range(1, 13)]
    for key in keys:
        producer.publish(topic, key, key)
    assert producer.flush(30.0) == 0
    producer.close()
    consumer, _ = subscribe(event_log, topic)
    records = read_all(consumer, len(keys))
    consumer.close()
    assert {r.key: r.partition for r in records} == {k: (murmur2(k) & 0x7FFFFFFF) % 3 for k in keys}


def test_each_record_keeps_its_own_headers_and_reports_reach_their_callbacks(
    event_log: EventLog, topic: str
) -> None:
    """Repeated and changing headers (tuples, lists, none) each land with their record;
    records without a callback are delivered too; every callback gets its own reports."""
    event_log.ensure_topics([topic])
    producer = event_log.producer(gapless=True)
    schema, other = (("schema", b"a"),), (("schema", b"b"), ("x", b"1"))
    sent = [schema, schema, other, [("mac", b"m")], (), schema]
    firsts: list[Exception | None] = []
    seconds: list[Exception | None] = []
    for i, headers in enumerate(sent):
        on_delivery = None if i == 4 else firsts.append if i < 3 else seconds.append
        producer.publish(
            topic, b"k", f"v{i}".encode(), partition=0, headers=headers, on_delivery=on_delivery
        )
    assert producer.flush(30.0) == 0
    producer.close()
    assert (firsts, seconds) == ([None] * 3, [None] * 2)
    consumer, _ = subscribe(event_log, topic)
    records = read_all(consumer, len(sent))
    consumer.close()
    assert [r.value for r in records] == [f"v{i}".encode() for i in range(len(sent))]
    assert [tuple(r.headers) for r in records] == [tuple(h) for h in sent]


def test_ensure_topics_twice_keeps_existing_records(event_log: EventLog, topic: str) -> None:
    """Creating an existing topic again is harmless and loses nothing."""
    event_log.ensure_topics([topic])
    publish_all(event_log, topic, [(0, b"x")])
    event_log.ensure_topics([topic])
    assert event_log.end_offsets(topic)[0] == 1


def test_each_record_says_when_the_log_appended_it(event_log: EventLog, topic: str) -> None:
    """``appended_at_ms``, by the log's clock (the broker's here, on this machine): between
    the publish and the delivery report, and the same when read again."""
    event_log.ensure_topics([topic])
    before_ms = int(time.time() * 1000)
    publish_all(event_log, topic, [(p, b"x") for p in range(3)])
    after_ms = int(time.time() * 1000) + 1
    consumer, _ = subscribe(event_log, topic)
    records = read_all(consumer, 3)
    consumer.close()
    assert len(records) == 3
    assert all(before_ms <= r.appended_at_ms <= after_ms for r in records)
    last = event_log.last_record(topic, 0)
    (first_read,) = [r for r in records if r.partition == 0]
    assert last is not None and last.appended_at_ms == first_read.appended_at_ms


def test_a_poll_returns_once_a_record_is_there_not_when_the_batch_is_full(
    event_log: EventLog, topic: str
) -> None:
    """``poll_batch`` waits at most its timeout for the first record, and no longer once
    one is there for a batch of ``max_records`` (a quiet partition's change is applied
    at once, not after the poll timeout)."""
    event_log.ensure_topics([topic])
    consumer, _ = subscribe(event_log, topic)
    read_all(consumer, 1, timeout_s=1.0)  # join and get the assignment
    publish_all(event_log, topic, [(0, b"only")])
    began = time.monotonic()
    records: list[LogRecord] = []
    while not records and time.monotonic() - began < 20.0:
        records = list(consumer.poll_batch(5000, 20.0))
    waited_s = time.monotonic() - began
    consumer.close()
    assert [r.value for r in records] == [b"only"]
    # Far below the 20 s timeout it may wait for a full batch of 5,000.
    assert waited_s < 10.0
