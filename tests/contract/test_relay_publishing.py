"""The relay over each event log: every handed-off row is published and reported, and
its publish group goes (delivery reports of Kafka arrive rounds after the produce)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness import wait_until

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.log.base import EventLog
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.relay import Relay
from ledgerd.store.sqlite import SqliteStore
from ledgerd.support.supervisor import Supervisor

GROUPS, ROWS_PER_GROUP = 40, 250


def test_every_handed_off_group_is_published_and_forgotten(
    event_log: EventLog, topic: str, tmp_path: Path
) -> None:
    """Groups handed off while earlier ones are still being delivered: all rows end in
    the log, none stays claimed, and no publish group is left (the sweep finds nothing)."""
    store = SqliteStore(tmp_path / "store.sqlite")
    store.migrate()
    event_log.ensure_topics([topic])
    relay = Relay(
        store,
        event_log.producer(),
        MessageSigner(store.message_key()),
        topic=topic,
        partition_count=3,
        batch_max_messages=100,
        may_sweep=lambda: False,
    )
    supervisor = Supervisor()
    supervisor.add_thread("relay", relay.run, has_work=relay.has_work, wake=relay.wake)
    supervisor.start()
    try:
        for group in range(GROUPS):
            requests = [
                ChangeRequest(f"g{group}-r{n}", 1 + n % 7, "USD", ChangeType.DEPOSIT, SCALE)
                for n in range(ROWS_PER_GROUP)
            ]
            store.accept_requests(
                [r.request_id for r in requests], lambda _, rs=requests: rs, 1000, f"g{group}"
            )
            relay.hand_off(requests, 1000, f"g{group}")
        wait_until(lambda: not relay.has_work(), 120, "every delivery reported")
        total = GROUPS * ROWS_PER_GROUP
        assert sum(event_log.end_offsets(topic).values()) == total
        assert store.find_unsent(created_before_ms=2000, limit=10) == []
    finally:
        asyncio.run(supervisor.stop_all())
        store.close()
