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
from ledgerd.runtime.supervisor import Supervisor
from ledgerd.store.sqlite import SqliteStore

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


def _relay(store: SqliteStore, event_log: EventLog, topic: str, **options: int) -> Relay:
    event_log.ensure_topics([topic])
    return Relay(
        store,
        event_log.producer(),
        MessageSigner(store.message_key()),
        topic=topic,
        partition_count=3,
        may_sweep=lambda: False,
        **options,
    )


def _deposit(request_id: str) -> ChangeRequest:
    return ChangeRequest(request_id, 1, "USD", ChangeType.DEPOSIT, SCALE)


def _unsent(store: SqliteStore) -> set[str]:
    return {u.stored.request.request_id for u in store.find_unsent(2000, 10)}


def test_an_open_group_goes_only_once_closed_and_delivered(
    event_log: EventLog, topic: str, tmp_path: Path
) -> None:
    """The acceptor's publish group spans commits: delivered rows keep it while it is open
    (a later commit may add rows), and it is deleted once closed."""
    store = SqliteStore(tmp_path / "store.sqlite")
    store.migrate()
    relay = _relay(store, event_log, topic)
    try:
        store.accept_requests(["a"], lambda _: [_deposit("a")], 1000, "g")
        relay.accepted([_deposit("a")], 1000, "g")
        relay.run_until_idle(30)
        store.accept_requests(["b"], lambda _: [_deposit("b")], 1000, "g", new_group=False)
        relay.accepted([_deposit("b")], 1000, "g")
        relay.run_until_idle(30)
        assert _unsent(store) == {"a", "b"}  # in the log, but the group is still open
        relay.close_group("g")
        relay.run_until_idle(30)
        assert _unsent(store) == set()
        assert sum(event_log.end_offsets(topic).values()) == 2
    finally:
        store.close()


def test_an_open_group_with_rows_left_to_the_sweep_stays(
    event_log: EventLog, topic: str, tmp_path: Path
) -> None:
    """Rows of an open group that did not fit the relay's queue wait for the sweep: the
    group is never deleted, even once closed and its queued rows delivered."""
    store = SqliteStore(tmp_path / "store.sqlite")
    store.migrate()
    relay = _relay(store, event_log, topic, queue_max=1)
    try:
        both = [_deposit("a"), _deposit("b")]
        store.accept_requests(["a", "b"], lambda _: both, 1000, "g")
        relay.accepted(both, 1000, "g")
        relay.accepted([_deposit("c")], 1000, "g")
        relay.close_group("g")
        relay.run_until_idle(30)
        assert _unsent(store) == {"a", "b"}
    finally:
        store.close()
