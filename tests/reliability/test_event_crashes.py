"""Change events across crashes: a consumer process (and its event publisher) killed during
a load leaves every journal entry in balance-events exactly once."""

from __future__ import annotations

from collections import Counter

from harness import Deployment, services, wait_until
from harness.load import Load, new_user

from ledgerd.client import LedgerdClient
from ledgerd.log.kafka import KafkaLog


def first_events(client: LedgerdClient, count: int) -> Counter[tuple[int, str, int]]:
    """(user, currency, version) of the topic's first ``count`` events, counted."""
    seen: Counter[tuple[int, str, int]] = Counter()
    for event in client.tail_events(from_beginning=True, limit=count, timeout_s=120.0):
        seen[(event.entry.user_id, event.entry.currency, event.entry.version)] += 1
    return seen


def events_in_topic(deployment: Deployment) -> int:
    """How many records the deployment's events topic holds (its end offsets: nothing is
    removed from it here)."""
    log = KafkaLog(services.kafka_bootstrap(), partition_count=3)
    try:
        return sum(log.end_offsets(deployment.env["LEDGERD_EVENTS_TOPIC"]).values())
    finally:
        log.close()


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
    # Exactly once: the topic holds as many records as the journal has entries (a repeat
    # would make more, a skip fewer), and those records are that many distinct entries.
    # (Reading the whole topic within a short deadline instead failed when reading it was
    # slower than the deadline on a loaded machine.)
    held = wait_until(
        lambda: (n := events_in_topic(deployment)) >= journal_entries and n,
        120,
        "every journal entry published",
    )
    assert held == journal_entries
    with LedgerdClient(api.target, timeout_s=30.0) as client:
        seen = first_events(client, journal_entries)
    repeated = {key: count for key, count in seen.items() if count > 1}
    assert repeated == {}
    assert len(seen) == journal_entries
    assert {user for user, _, _ in seen} >= set(users)
