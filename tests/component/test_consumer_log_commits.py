"""The consumer's advisory copy of its positions in the log (lag for Kafka's tools): sent
at most once per interval, not after every batch (a broker request each, issue 22)."""

from __future__ import annotations

import pytest
from component_support import TOPIC, Rig

from ledgerd.consumer import intake
from ledgerd.consumer.config import ConsumerConfig
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType


def deposits(count: int, prefix: str) -> list[ChangeRequest]:
    return [
        ChangeRequest(f"{prefix}{n}", 1, "USD", ChangeType.DEPOSIT, SCALE) for n in range(count)
    ]


def test_positions_reach_the_log_once_per_interval_and_when_the_consumer_closes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch's position is sent at once; a later one waits for the interval (the
    store holds the real position meanwhile); closing sends the last."""
    monkeypatch.setattr(intake, "_LOG_COMMIT_INTERVAL_S", 3600.0)

    def in_log() -> int:
        group = rig.log.consumer(ConsumerConfig().group_id)
        return sum(group.committed(TOPIC, [0, 1, 2]).values())

    rig.accept(deposits(2, "a"))
    rig.relay().run_until_idle()
    consumer = rig.consumer()
    consumer.run_until_idle()
    assert in_log() == 2
    rig.accept(deposits(3, "b"))
    rig.relay().run_until_idle()
    consumer.run_until_idle()
    assert sum(rig.store.get_positions(TOPIC).values()) == 5
    assert in_log() == 2
    consumer.close()
    assert in_log() == 5
