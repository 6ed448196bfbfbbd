"""Change events across crashes: a consumer process (and its event publisher) killed during
a load leaves every journal entry in balance-events exactly once."""

from __future__ import annotations

from collections import Counter

import grpc
from harness import Deployment, wait_until
from harness.load import Load, new_user

from ledgerd.client import LedgerdClient, LedgerdRpcError


def every_event(client: LedgerdClient) -> Counter[tuple[int, str, int]]:
    """(user, currency, version) of every event in the topic, counted; read until the
    stream has been quiet for its whole timeout."""
    seen: Counter[tuple[int, str, int]] = Counter()
    try:
        for event in client.tail_events(from_beginning=True, timeout_s=5.0):
            seen[(event.entry.user_id, event.entry.currency, event.entry.version)] += 1
    except LedgerdRpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return seen


def test_killed_publishers_neither_skip_nor_repeat_events(deployment: Deployment) -> None:
    """SIGKILL the consumer process (it publishes the events) 4 times during a load; once
    settled, the topic holds one event per journal entry, none twice."""
    api = deployment.start("api", consumer=False)
    consumer = deployment.start("consumer", api=False, relay=False)
    users = [new_user() for _ in range(20)]
    with Load(api.target, users, clients=6) as load:
        for _ in range(4):
            # This run of the process (its counter starts at 0) publishes, then dies.
            wait_until(
                lambda: consumer.metric("ledgerd_events_published_total") > 20,
                60,
                "the consumer publishing events",
            )
            consumer.kill()
            consumer.start(timeout_s=60)
        consumer.wait_applied(50, timeout_s=120)
    assert not load.errors, load.errors
    report = api.wait_settled(timeout_s=120)
    assert report["ok"], report["problems"]
    journal_entries = report["journal_entries"]
    with LedgerdClient(api.target, timeout_s=30.0) as client:

        def all_published() -> Counter[tuple[int, str, int]] | None:
            found = every_event(client)
            return found if sum(found.values()) >= journal_entries else None

        seen = wait_until(all_published, 120, "every journal entry published")
    repeated = {key: count for key, count in seen.items() if count > 1}
    assert repeated == {}
    assert len(seen) == journal_entries
    assert {user for user, _, _ in seen} >= set(users)
