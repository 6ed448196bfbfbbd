"""Operator commands for the dead-letter topic: list it, and replay it after a fix.

Replay re-publishes each DLQ message to the main topic (partitioned by its
key, the user id) and records its progress as the group ``ledgerd-dlq-replay``
in the log, so running it twice does not publish a message twice; and if it
did, the consumer would still apply each request at most once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import EventLog, LogConsumer, LogRecord

REPLAY_GROUP = "ledgerd-dlq-replay"
LIST_GROUP = "ledgerd-dlq-list"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: LogRecord

    @property
    def error(self) -> str:
        return dict(self.record.headers).get("error", b"").decode("utf-8", "replace")


def _read(consumer: LogConsumer, topic: str, idle_s: float = 2.0) -> Iterator[LogRecord]:
    """Every record from the assigned positions until nothing new arrives for idle_s."""
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < idle_s:
        records = consumer.poll_batch(500, 0.5)
        if records:
            quiet_since = time.monotonic()
            yield from records


def list_dead_letters(event_log: EventLog, dlq_topic: str, limit: int) -> list[DeadLetter]:
    """The DLQ's messages from the start (read only; nothing is committed)."""
    # Dead letters retention removed are gone: list from the oldest kept.
    consumer = event_log.consumer(LIST_GROUP, skip_lost_records=True)
    consumer.subscribe(dlq_topic, lambda ps: dict.fromkeys(ps, 0), lambda _: None)
    try:
        found: list[DeadLetter] = []
        for record in _read(consumer, dlq_topic):
            found.append(DeadLetter(record))
            if len(found) >= limit:
                break
        return found
    finally:
        consumer.close()


def replay_dead_letters(event_log: EventLog, dlq_topic: str, topic: str) -> int:
    """Re-publish DLQ messages not replayed before; returns how many were sent.

    Raises:
        LogUnavailable: a message could not be published (progress is kept up to it).
    """
    consumer = event_log.consumer(REPLAY_GROUP, skip_lost_records=True)

    def start(partitions: Sequence[int]) -> Mapping[int, int]:
        return consumer.committed(dlq_topic, partitions)

    consumer.subscribe(dlq_topic, start, lambda _: None)
    producer = event_log.producer()
    sent = 0
    try:
        for record in _read(consumer, dlq_topic):
            user_id = int(record.key) if record.key.isdigit() else 0
            partition = partition_for_user(user_id, event_log.partition_count) if user_id else None
            producer.publish(topic, record.key, record.value, partition=partition)
            if producer.flush(30.0):
                raise LogUnavailable("replayed message not delivered")
            consumer.commit({record.partition: record.offset + 1})
            sent += 1
        return sent
    finally:
        producer.close()
        consumer.close()
