"""The bench's view of the pipeline from outside (PipelineProbe): consumer lag from the
log's end offsets and the store's positions, requests without an outcome, the end-to-end
rate from the journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from component_support import DLQ, TOPIC, Rig

from ledgerd.bench.pipeline import PipelineProbe, follow_to_the_end
from ledgerd.cache.memory import MemoryCache
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.errors import LogUnavailable
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.store.sqlite import SqliteStore


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Rig, PipelineProbe]]:
    """Store and log where a server with LEDGERD_DATA_DIR=tmp_path keeps them, and a probe
    built from that server's settings."""
    store = SqliteStore(tmp_path / "ledgerd.sqlite")
    store.migrate()
    log = EmbeddedLog(tmp_path / "eventlog.sqlite", partition_count=3)
    log.ensure_topics([TOPIC, DLQ])
    probe = PipelineProbe({"LEDGERD_TOPIC": TOPIC, "LEDGERD_DATA_DIR": str(tmp_path)}, tmp_path)
    yield Rig(store, log, MemoryCache()), probe
    probe.close()
    log.close()
    store.close()


def deposits(count: int) -> list[ChangeRequest]:
    return [ChangeRequest(f"d{n}", n + 1, "USD", ChangeType.DEPOSIT, SCALE) for n in range(count)]


def test_lag_counts_published_records_not_applied_yet(
    deployment: tuple[Rig, PipelineProbe],
) -> None:
    """Accepted: unfinished, no lag; published: lagging; applied: neither, journal dated."""
    rig, probe = deployment
    rig.accept(deposits(5))
    assert (probe.unfinished(), probe.consumer_lag()) == (5, 0)
    rig.relay().run_until_idle()
    assert (probe.unfinished(), probe.consumer_lag()) == (5, 5)
    assert probe.last_applied_at_s() is None
    rig.consumer().run_until_idle()
    assert (probe.unfinished(), probe.consumer_lag()) == (0, 0)
    assert probe.wait_for_outcomes(timeout_s=0.0)
    assert probe.last_applied_at_s() is not None


def test_a_transfer_credit_in_the_log_but_not_applied_is_not_settled(
    deployment: tuple[Rig, PipelineProbe],
) -> None:
    """A transfer's credit leaves the outbox once the log has it: with nothing unfinished
    in the outbox, the run is still not settled until the credit applied."""
    rig, probe = deployment
    rig.accept([ChangeRequest("d1", 1, "USD", ChangeType.DEPOSIT, SCALE)])
    rig.accept([ChangeRequest("t1", 1, "USD", ChangeType.TRANSFER_OUT, SCALE, "", "t1", 2)])
    relay = rig.relay()
    consumer = rig.consumer(relay.hand_off)
    relay.run_until_idle()
    consumer.run_until_idle()  # the debit applies and hands its credit to the relay
    relay.run_until_idle()  # the credit is in the log, its outbox row deleted
    assert (probe.unfinished(), probe.consumer_lag()) == (0, 1)
    assert not probe.wait_for_outcomes(timeout_s=0.0)
    consumer.run_until_idle()
    assert probe.wait_for_outcomes(timeout_s=0.0)


def test_a_slow_watermark_read_is_asked_again_not_raised(
    deployment: tuple[Rig, PipelineProbe], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kafka's watermarks may not answer within their second under load: the wait asks
    again until its own deadline instead of failing the bench."""
    _, probe = deployment
    # Once drained, the log is read again between the two outbox counts.
    answers: list[int | Exception] = [LogUnavailable("kafka watermarks: timed out"), 0, 0]

    def consumer_lag() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(probe, "consumer_lag", consumer_lag)
    assert probe.wait_for_outcomes(timeout_s=5.0, poll_s=0.01)
    assert answers == []


def test_end_to_end_rate_runs_from_the_first_call_to_the_last_applied_change(
    deployment: tuple[Rig, PipelineProbe],
) -> None:
    """5 changes, the first call 2 s before the newest journal entry: 2.5 changes/s end
    to end, while 5 accepted in a 1 s load is 5 changes/s accepted."""
    rig, probe = deployment
    rig.accept(deposits(5))
    rig.relay().run_until_idle()
    rig.consumer().run_until_idle()
    last_applied_s = probe.last_applied_at_s()
    assert last_applied_s is not None
    figures = follow_to_the_end(
        probe, accepted=5, load_started_at_s=last_applied_s - 2.0, load_elapsed_s=1.0
    )
    assert figures.settled
    assert figures.end_to_end_rate == pytest.approx(2.5)
    assert figures.accepted_rate == 5.0
    assert (figures.consumer_lag_end, figures.unfinished_end) == (0, 0)


def test_unsettled_load_has_no_end_to_end_rate(deployment: tuple[Rig, PipelineProbe]) -> None:
    """Requests still without an outcome at the timeout: no rate, and not settled."""
    rig, probe = deployment
    rig.accept(deposits(2))
    figures = follow_to_the_end(
        probe, accepted=2, load_started_at_s=0.0, load_elapsed_s=1.0, timeout_s=0.0
    )
    assert not figures.settled
    assert figures.end_to_end_rate is None
    assert figures.unfinished_end == 2
