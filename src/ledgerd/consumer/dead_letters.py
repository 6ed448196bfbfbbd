"""The dead-letter queue: poison messages leave the partition with their error attached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from ledgerd import metrics
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import LogProducer, LogRecord

log = structlog.get_logger(__name__)

_FLUSH_TIMEOUT_S = 30.0


# Why a record was dead-lettered: its ``reason`` header and the DLQ metric's label.
POISON = "poison"  # undecodable, invalid, or not produced by the outbox
STORE_REJECTED = "store_rejected"  # the database refuses its values, every time
DECISION_FAILED = "decision_failed"  # deciding it raised, max_decision_failures times


@dataclass(frozen=True, slots=True)
class Poison:
    """A record that can never be applied, and why."""

    record: LogRecord
    error: str
    reason: str = POISON


class DeadLetters:
    """Writes poison records to the DLQ topic, durably, before their batch commits."""

    def __init__(self, producer: LogProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    def send(self, poison: Sequence[Poison]) -> None:
        """Publish and wait for delivery: the batch's commit moves the offset past them.

        Raises:
            LogUnavailable: some were not delivered (the batch is retried).
        """
        errors: list[Exception] = []

        def on_delivery(error: Exception | None) -> None:
            if error is not None:
                errors.append(error)

        for item in poison:
            record = item.record
            self._producer.publish(
                self._topic,
                record.key,
                record.value,
                headers=[
                    ("error", item.error.encode()),
                    ("reason", item.reason.encode()),
                    ("source-topic", record.topic.encode()),
                    ("source-partition", str(record.partition).encode()),
                    ("source-offset", str(record.offset).encode()),
                ],
                on_delivery=on_delivery,
            )
        remaining = self._producer.flush(_FLUSH_TIMEOUT_S)
        if remaining or errors:
            raise LogUnavailable(f"could not write {len(poison)} messages to the DLQ")
        for item in poison:
            metrics.DLQ_MESSAGES.labels(reason=item.reason).inc()
            record = item.record
            log.warning(
                "message sent to the DLQ", reason=item.reason, topic=record.topic,
                partition=record.partition, offset=record.offset, error=item.error,
            )  # fmt: skip

    def close(self) -> None:
        self._producer.close()
