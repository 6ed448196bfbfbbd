"""A consumer catching up a backlog reads no outcome for what joined the log on time
(embedded log; tests/integration/test_kafka_append_stamps.py on Kafka)."""

from __future__ import annotations

import time

from component_support import Rig
from prometheus_client import REGISTRY

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType

WINDOW_S = 0.3


def checked() -> float:
    return REGISTRY.get_sample_value("ledgerd_consumer_checked_messages_total") or 0.0


def deposits(prefix: str) -> list[ChangeRequest]:
    return [
        ChangeRequest(f"{prefix}-{user}", user, "USD", ChangeType.DEPOSIT, SCALE)
        for user in range(1, 7)
    ]


def publish(rig: Rig, requests: list[ChangeRequest], accepted_at_ms: int) -> None:
    """Accept and publish as the API process does: the relay's first publication."""
    rig.accept(requests, now_ms=accepted_at_ms)
    relay = rig.relay()
    relay.hand_off(requests, accepted_at_ms)
    relay.run_until_idle(sweep_min_age_s=3600)  # no sweep resends them


def balances(rig: Rig) -> list[int]:
    return [rig.store.get_balances(user, "USD")[0].available for user in range(1, 7)]


def test_a_backlog_older_than_the_window_but_appended_on_time_is_applied_unread(
    rig: Rig,
) -> None:
    """Published right after acceptance, read three windows later: every message joined
    the log before any resent copy could, so none is checked, and each applies once."""
    publish(rig, deposits("d"), int(time.time() * 1000))
    assert all(r.appended_at_ms > 0 for r in rig.log.read("balance-changes", 0, 0, 10))
    time.sleep(3 * WINDOW_S)
    before = checked()
    rig.consumer(trust_window_s=WINDOW_S).run_until_idle()
    assert checked() - before == 0
    assert balances(rig) == [SCALE] * 6


def test_messages_appended_after_the_window_are_checked_and_a_decided_one_skipped(
    rig: Rig,
) -> None:
    """A relay that published three windows after acceptance: a resent copy may have joined
    the log first, so every message is checked, read as soon as it was appended; the one
    whose copy was applied before is not applied again."""
    requests = deposits("late")
    consumer = rig.consumer(trust_window_s=WINDOW_S)
    accepted_at_ms = int(time.time() * 1000)
    rig.accept(requests, now_ms=accepted_at_ms)
    resent = rig.relay()
    resent.run_until_idle(sweep_min_age_s=0)  # the sweep's copies first, flagged resent
    consumer.run_until_idle()
    time.sleep(3 * WINDOW_S)
    before = checked()
    late = rig.relay()
    late.hand_off(requests, accepted_at_ms)  # the originals, appended late
    late.run_until_idle(sweep_min_age_s=3600)
    consumer.run_until_idle()
    assert checked() - before == len(requests)
    assert balances(rig) == [SCALE] * 6
