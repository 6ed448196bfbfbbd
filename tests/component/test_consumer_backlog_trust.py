"""A consumer catching up a backlog reads no outcome for what joined the log on time
(embedded log; tests/integration/test_kafka_append_stamps.py on Kafka)."""

from __future__ import annotations

import time

from component_support import TOPIC, Rig
from prometheus_client import REGISTRY

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType

# Room for the append after the acceptance even on a loaded machine (the embedded log
# appends synchronously: milliseconds).
WINDOW_S = 1.0


def wait_past_window(accepted_at_ms: int) -> None:
    """Until more than the window has passed since the acceptance."""
    time.sleep(max(0.0, accepted_at_ms / 1000 + WINDOW_S + 0.2 - time.time()))


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
    """Published right after acceptance, read once the window has passed: every message
    joined the log before any resent copy could, so none is checked, and each applies once."""
    accepted_at_ms = int(time.time() * 1000)
    publish(rig, deposits("d"), accepted_at_ms)
    appended = [r.appended_at_ms for p in range(3) for r in rig.log.read(TOPIC, p, 0, 10)]
    assert len(appended) == 6
    assert all(0 <= at - accepted_at_ms <= WINDOW_S * 1000 for at in appended), appended
    wait_past_window(accepted_at_ms)
    before = checked()
    rig.consumer(trust_window_s=WINDOW_S).run_until_idle()
    assert checked() - before == 0
    assert balances(rig) == [SCALE] * 6


def test_messages_appended_after_the_window_are_checked_and_a_decided_one_skipped(
    rig: Rig,
) -> None:
    """A relay that published after the window: a resent copy may have joined the log
    first, so every message is checked, read as soon as it was appended, and none whose
    copy was applied before is applied again."""
    requests = deposits("late")
    consumer = rig.consumer(trust_window_s=WINDOW_S)
    accepted_at_ms = int(time.time() * 1000)
    rig.accept(requests, now_ms=accepted_at_ms)
    resent = rig.relay()
    resent.run_until_idle(sweep_min_age_s=0)  # the sweep's copies first, flagged resent
    consumer.run_until_idle()
    wait_past_window(accepted_at_ms)
    before = checked()
    late = rig.relay()
    late.hand_off(requests, accepted_at_ms)  # the originals, appended late
    late.run_until_idle(sweep_min_age_s=3600)
    consumer.run_until_idle()
    assert checked() - before == len(requests)
    assert balances(rig) == [SCALE] * 6
