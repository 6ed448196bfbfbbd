"""Relay and consumer over embedded backends: resends, poison, fencing, bounded memory."""

from __future__ import annotations

from typing import Any

from component_support import DLQ, Rig

from ledgerd.audit import audit
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, ChangeRequest, ChangeStatus, ChangeType
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.log.codec import encode_change


def deposits(count: int, users: int = 1, prefix: str = "d") -> list[ChangeRequest]:
    return [
        ChangeRequest(f"{prefix}{n}", n % users + 1, "USD", ChangeType.DEPOSIT, SCALE)
        for n in range(count)
    ]


def test_sweep_publishes_stranded_rows_and_marks_them_sent(rig: Rig) -> None:
    """Rows committed but never handed to a relay are found by the sweep, published, SENT."""
    rig.accept(deposits(5))
    relay = rig.relay()
    relay.run_until_idle()
    assert {s.status for s in rig.store.get_requests([f"d{n}" for n in range(5)]).values()} == {
        ChangeStatus.SENT
    }
    assert sum(rig.log.end_offsets("balance-changes").values()) == 5


def test_a_resent_message_is_applied_once(rig: Rig) -> None:
    """The same request published twice (a relay resend) changes the balance once."""
    requests = deposits(3)
    rig.accept(requests)
    rig.relay().run_until_idle()
    producer = rig.log.producer()
    for request in requests:  # as if the relay crashed before marking them SENT
        producer.publish(
            "balance-changes", user_key(request.user_id), encode_change(request), partition=0
        )
    producer.flush(5)
    rig.consumer().run_until_idle()
    assert rig.store.get_balances(1, "USD")[0].available == 3 * SCALE
    report = audit(rig.store)
    assert report.ok and report.journal_entries == 3


def test_poison_goes_to_the_dlq_and_later_changes_still_apply(rig: Rig) -> None:
    """Undecodable bytes land in the DLQ with an error header; the change after them applies."""
    producer = rig.log.producer()
    producer.publish("balance-changes", b"1", b"\xff garbage", partition=0)
    producer.flush(5)
    rig.accept(deposits(1))
    rig.relay().run_until_idle()
    rig.consumer().run_until_idle()
    assert rig.store.get_balances(1, "USD")[0].available == SCALE
    consumer = rig.log.consumer("dlq-reader")
    consumer.subscribe(DLQ, lambda ps: dict.fromkeys(ps, 0), lambda _: None)
    (dead,) = consumer.poll_batch(10, 1.0)
    assert dead.value == b"\xff garbage"
    assert b"undecodable" in dict(dead.headers)["error"]


def test_a_consumer_whose_partition_was_claimed_again_is_fenced(rig: Rig) -> None:
    """After another claim bumps the epoch, the old consumer's batch commits nothing."""
    rig.accept(deposits(2))
    rig.relay().run_until_idle()
    stale = rig.consumer()
    stale.run_once(timeout_s=0)  # claims every partition and applies
    rig.accept(deposits(2, prefix="late"))
    rig.relay().run_until_idle()
    for partition in range(3):
        rig.store.claim_partition("balance-changes", partition)  # a newer owner
    stale.run_once(timeout_s=0)
    assert rig.store.get_balances(1, "USD")[0].available == 2 * SCALE
    # The fenced partition is dropped until the log assigns it again.
    assert partition_for_user(1, 3) not in stale.owned_partitions


def test_a_batch_fenced_by_the_consumers_own_new_claim_keeps_the_partition(rig: Rig) -> None:
    """The log assigns a partition to this consumer again while a batch of the old claim is
    committing: the batch is fenced, but the new claim stands and the batch applies from it
    (the partition used to be dropped until the next rebalance)."""
    rig.accept(deposits(2))
    rig.relay().run_until_idle()
    consumer = rig.consumer()
    partition = partition_for_user(1, 3)
    commit = consumer._writer.commit

    def reassigned_meanwhile(*args: Any, **kwargs: Any) -> None:
        consumer._intake._assigned([partition])  # a rebalance hands it back: a newer epoch
        consumer._writer.commit = commit
        commit(*args, **kwargs)

    consumer._writer.commit = reassigned_meanwhile  # type: ignore[method-assign]
    consumer.run_once(timeout_s=0)
    assert rig.store.get_balances(1, "USD") == []  # fenced: nothing committed
    assert partition in consumer.owned_partitions
    consumer.run_until_idle()
    assert rig.store.get_balances(1, "USD")[0].available == 2 * SCALE


def test_memory_stays_within_the_cap_and_evicted_accounts_reload(rig: Rig) -> None:
    """With room for 6 accounts, 30 accounts apply correctly and memory holds at most 6."""
    rig.accept(deposits(60, users=30))
    rig.relay().run_until_idle()
    consumer = rig.consumer(max_accounts_in_memory=6)
    consumer.run_until_idle()
    rig.accept(deposits(30, users=30, prefix="again"))
    rig.relay().run_until_idle()
    consumer.run_until_idle()
    held = sum(1 for user in range(1, 31) if consumer.lookup(Account(user, "USD")) is not None)
    assert held <= 6
    assert {b.available for u in range(1, 31) for b in rig.store.get_balances(u, "USD")} == {
        3 * SCALE
    }
    assert audit(rig.store).ok


def test_dlq_replay_republishes_once_and_the_fixed_change_applies(rig: Rig) -> None:
    """A message dead-lettered for lack of its outbox row applies after the row exists and a
    replay; replaying again sends nothing."""
    from ledgerd.dlq import list_dead_letters, replay_dead_letters

    late = deposits(1, prefix="late")[0]
    producer = rig.log.producer()
    producer.publish("balance-changes", user_key(late.user_id), encode_change(late), partition=0)
    producer.flush(5)
    rig.consumer().run_until_idle()
    (letter,) = list_dead_letters(rig.log, DLQ, limit=10)
    assert "no outbox request" in letter.error
    rig.accept([late])  # the fix: the request is now in the outbox
    assert replay_dead_letters(rig.log, DLQ, "balance-changes") == 1
    assert replay_dead_letters(rig.log, DLQ, "balance-changes") == 0
    rig.consumer().run_until_idle()
    assert rig.store.get_balances(late.user_id, "USD")[0].available == SCALE
    assert audit(rig.store).ok
