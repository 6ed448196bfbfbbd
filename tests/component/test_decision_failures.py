"""A record whose decision raises costs its partition a DLQ entry after N tries, counted in
the store across consumer restarts; the other partitions go on meanwhile."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import pytest
import structlog.testing
from component_support import DLQ, TOPIC, Rig
from prometheus_client import REGISTRY

from ledgerd.consumer import worker
from ledgerd.consumer.columns import ColumnBatch, ColumnDecision
from ledgerd.consumer.decide import BatchDecision
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.log.base import LogRecord

# Users A, B and C fall in three different partitions of 3 (murmur2): a batch spans them all.
A, B, C = 1, 4, 2


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The consumer's log events, captured (unrendered: a traceback costs no time here)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def deposit(request_id: str, user_id: int) -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, SCALE)


def raising_for(monkeypatch: pytest.MonkeyPatch, request_id: str, times: int | None) -> list[int]:
    """Deciding a batch that holds ``request_id`` raises (the first ``times`` times, or
    always); returns the list that counts the raises."""
    real = worker.decide_batch
    raised: list[int] = []

    def decide(changes: Sequence[ChangeRequest], *args: Any, **kwargs: Any) -> BatchDecision:
        if any(c.request_id == request_id for c in changes) and (
            times is None or len(raised) < times
        ):
            raised.append(1)
            raise ZeroDivisionError(f"a bug met {request_id}")
        return real(changes, *args, **kwargs)

    real_columns = worker.decide_columns

    def decide_columns(batch: ColumnBatch, *args: Any, **kwargs: Any) -> ColumnDecision:
        # The same fault on the column path, which takes batches of plain client changes.
        if request_id in batch.request_ids and (times is None or len(raised) < times):
            raised.append(1)
            raise ZeroDivisionError(f"a bug met {request_id}")
        return real_columns(batch, *args, **kwargs)

    monkeypatch.setattr(worker, "decide_batch", decide)
    monkeypatch.setattr(worker, "decide_columns", decide_columns)
    return raised


def dead_letters(rig: Rig) -> list[LogRecord]:
    reader = rig.log.consumer("dlq-reader")
    reader.subscribe(DLQ, lambda ps: dict.fromkeys(ps, 0), lambda _: None)
    try:
        return list(reader.poll_batch(100, 0.5))
    finally:
        reader.close()


def accept_in_order(rig: Rig, *requests: ChangeRequest) -> None:
    """Accepted one after another, so the relay publishes them in this order."""
    for index, request in enumerate(requests):
        rig.accept([request], now_ms=1000 + index)


def dead_letter_count(rig: Rig) -> int:
    return sum(rig.log.end_offsets(DLQ).values())


def available(rig: Rig, user_id: int) -> int:
    found = rig.store.get_balances(user_id, "USD")
    return found[0].available if found else 0


def attempts(rig: Rig) -> dict[int, tuple[int, int]]:
    return {f.partition: (f.offset, f.attempts) for f in rig.store.record_failures(TOPIC)}


def test_users_of_the_tests_are_in_three_partitions() -> None:
    """The tests below rely on one partition per user."""
    assert sorted(partition_for_user(u, 3) for u in (A, B, C)) == [0, 1, 2]


def test_a_record_whose_decision_raises_is_dead_lettered_after_n_tries_across_restarts(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each try counts once in the store; a new consumer (a restart) continues the count;
    the third try dead-letters the record, its partition moves past it, and the request
    reads FAILED. The other partitions applied at the first try."""
    raising_for(monkeypatch, "boom", times=None)
    accept_in_order(
        rig, deposit("a1", A), deposit("boom", A), deposit("a2", A), deposit("b1", B),
        deposit("c1", C),
    )  # fmt: skip
    rig.relay().run_until_idle()
    partition = partition_for_user(A, 3)

    for tries in (1, 2):
        consumer = rig.consumer(pause_s=600.0, max_decision_failures=3)
        consumer.run_until_idle()
        assert consumer.paused_partitions == [partition]  # held at the culprit, alone
        consumer.close()
        assert attempts(rig) == {partition: (1, tries)}  # a1 at offset 0 applied, boom at 1
        assert available(rig, A) == SCALE
        assert (available(rig, B), available(rig, C)) == (SCALE, SCALE)
        assert dead_letter_count(rig) == 0

    consumer = rig.consumer(pause_s=600.0, max_decision_failures=3)
    consumer.run_until_idle()
    assert consumer.paused_partitions == []
    consumer.close()
    assert available(rig, A) == 2 * SCALE  # a1 and a2; boom went to the DLQ
    (letter,) = dead_letters(rig)
    headers = dict(letter.headers)
    assert (letter.partition, headers["reason"]) == (partition, b"decision_failed")
    assert headers["source-offset"] == b"1"
    assert b"ZeroDivisionError" in headers["error"]
    assert rig.store.get_requests(["boom"])["boom"].status == ChangeStatus.FAILED
    assert attempts(rig) == {}  # moved past: the count is gone
    assert rig.store.get_positions(TOPIC)[partition] == 3


def test_a_record_whose_decision_raised_once_applies_and_its_count_resets(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that does not come back (fewer than N): the record applies on the next
    try and its failure count is forgotten."""
    raised = raising_for(monkeypatch, "flaky", times=1)
    rig.accept([deposit("flaky", A), deposit("b1", B)])
    rig.relay().run_until_idle()
    consumer = rig.consumer(pause_s=0.0, max_decision_failures=3)
    consumer.run_until_idle()
    assert len(raised) == 1
    assert attempts(rig) == {}
    assert (available(rig, A), available(rig, B)) == (SCALE, SCALE)
    assert rig.store.get_requests(["flaky"])["flaky"].status == ChangeStatus.APPLIED
    assert dead_letter_count(rig) == 0


def test_a_decision_exception_does_not_escape_the_consumer(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_decision_failures=1 the first failure dead-letters the record at once, and
    the round returns normally (the supervisor never sees the exception)."""
    raising_for(monkeypatch, "boom", times=None)
    accept_in_order(rig, deposit("boom", B), deposit("b2", B), deposit("c1", C))
    rig.relay().run_until_idle()
    consumer = rig.consumer(max_decision_failures=1)
    assert consumer.run_until_idle() == 3
    assert (available(rig, B), available(rig, C)) == (SCALE, SCALE)
    assert [dict(r.headers)["reason"] for r in dead_letters(rig)] == [b"decision_failed"]


def test_each_failure_and_the_dead_letter_are_logged_and_counted_by_reason(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, logs: list[MutableMapping[str, Any]]
) -> None:
    """Every failed try is logged with partition, offset, attempts and error, and counted;
    the dead letter is logged with partition, offset, reason and error, and counted in the
    DLQ metric under its reason."""

    def dlq_total() -> float:
        labels = {"reason": "decision_failed"}
        return REGISTRY.get_sample_value("ledgerd_dlq_messages_total", labels) or 0.0

    def failures_total() -> float:
        return REGISTRY.get_sample_value("ledgerd_consumer_decision_failures_total") or 0.0

    dlq_before, failures_before = dlq_total(), failures_total()
    raising_for(monkeypatch, "boom", times=None)
    accept_in_order(rig, deposit("boom", B))
    rig.relay().run_until_idle()
    consumer = rig.consumer(pause_s=0.0, max_decision_failures=2)
    consumer.run_until_idle()
    consumer.close()
    partition = partition_for_user(B, 3)
    tries = [e for e in logs if e["event"] == "deciding a record failed"]
    assert [(e["partition"], e["offset"], e["attempts"]) for e in tries] == [
        (partition, 0, 1),
        (partition, 0, 2),
    ]
    assert all("ZeroDivisionError" in e["error"] for e in tries)
    (dead,) = [e for e in logs if e["event"] == "record dead-lettered"]
    assert (dead["partition"], dead["offset"], dead["reason"]) == (partition, 0, "decision_failed")
    assert "ZeroDivisionError" in dead["error"] and dead["request_ids"] == ["boom"]
    assert (dlq_total() - dlq_before, failures_total() - failures_before) == (1.0, 2.0)
