"""Watermark reads on Kafka wait out a partition's leader election and fail on anything else."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ledgerd.log import kafka


class ElectingConsumer:
    """Answers ``errors`` in turn, then the watermarks."""

    def __init__(self, *errors: int) -> None:
        self._errors = list(errors)
        self.calls = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self._errors:
            raise KafkaException(KafkaError(self._errors.pop(0)))
        return (0, 7)


def test_a_partition_between_leaders_is_read_once_it_has_one() -> None:
    consumer = ElectingConsumer(
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    )
    assert kafka._watermark_offsets(consumer, "t", 1) == (0, 7)  # type: ignore[arg-type]
    assert consumer.calls == 4


def test_other_errors_are_raised_at_once() -> None:
    consumer = ElectingConsumer(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        kafka._watermark_offsets(consumer, "t", 1)  # type: ignore[arg-type]
    assert consumer.calls == 1


def test_a_leader_that_never_comes_is_raised_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka, "_ADMIN_TIMEOUT_S", 0.5)
    consumer = ElectingConsumer(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 1000)
    with pytest.raises(KafkaException):
        kafka._watermark_offsets(consumer, "t", 1)  # type: ignore[arg-type]
    assert 2 <= consumer.calls < 10
