"""Signed messages over embedded backends: resent copies, forgeries, and the last guard."""

from __future__ import annotations

import time

from component_support import DLQ, Rig

from ledgerd import metrics
from ledgerd.audit import audit
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.log.codec import encode_change
from ledgerd.log.signing import MessageSigner

TOPIC = "balance-changes"


def deposits(count: int, prefix: str = "d", amount: int = SCALE) -> list[ChangeRequest]:
    return [
        ChangeRequest(f"{prefix}{n}", 1, "USD", ChangeType.DEPOSIT, amount) for n in range(count)
    ]


def publish(
    rig: Rig,
    requests: list[ChangeRequest],
    *,
    signer: MessageSigner,
    accepted_at_ms: int,
    resent: bool = False,
) -> None:
    producer = rig.log.producer()
    for request in requests:
        value = encode_change(request, accepted_at_ms=accepted_at_ms, resent=resent)
        producer.publish(
            TOPIC,
            user_key(request.user_id),
            value,
            partition=partition_for_user(request.user_id, 3),
            headers=signer.headers(value),
        )
    producer.flush(5)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_resent_and_late_copies_are_applied_once(rig: Rig) -> None:
    """Copies flagged as resent, and originals older than the trust window, are checked
    against the outcomes: each request changes the balance once."""
    requests = deposits(3)
    rig.accept(requests)
    publish(rig, requests, signer=rig.signer, accepted_at_ms=now_ms())
    consumer = rig.consumer()
    consumer.run_until_idle()
    publish(rig, requests, signer=rig.signer, accepted_at_ms=now_ms(), resent=True)
    publish(rig, requests, signer=rig.signer, accepted_at_ms=now_ms() - 3_600_000)
    consumer.run_until_idle()
    assert rig.store.get_balances(1, "USD")[0].available == 3 * SCALE
    report = audit(rig.store)
    assert report.ok and report.journal_entries == 3


def test_a_copy_that_breaks_the_timing_rule_is_stopped_by_the_journal_key(rig: Rig) -> None:
    """A fresh, unflagged copy of an applied request (which the sweep never makes) fails the
    commit on the journal's unique request_id; the retry reads every outcome and applies
    nothing twice."""
    requests = deposits(2)
    rig.accept(requests)
    publish(rig, requests, signer=rig.signer, accepted_at_ms=now_ms())
    consumer = rig.consumer(retry_base_s=0.0)
    consumer.run_until_idle()
    retries = metrics.CONSUMER_RETRIES._value.get()
    publish(rig, requests, signer=rig.signer, accepted_at_ms=now_ms())
    consumer.run_until_idle()
    assert metrics.CONSUMER_RETRIES._value.get() == retries + 1  # the key refused the copy
    assert rig.store.get_balances(1, "USD")[0].available == 2 * SCALE
    assert audit(rig.store).journal_entries == 2


def test_a_forged_message_goes_to_the_dlq_and_changes_nothing(rig: Rig) -> None:
    """A well-formed change signed with another key never applies, even for a request the
    outbox holds; it is dead-lettered with the reason."""
    (request,) = deposits(1, prefix="forged", amount=1000 * SCALE)
    rig.accept([request])
    publish(rig, [request], signer=MessageSigner(b"x" * 32), accepted_at_ms=now_ms())
    rig.consumer().run_until_idle()
    assert rig.store.get_balances(1, "USD") == []
    assert rig.store.get_requests([request.request_id])[request.request_id].status is (
        ChangeStatus.PENDING
    )
    reader = rig.log.consumer("dlq-reader")
    reader.subscribe(DLQ, lambda ps: dict.fromkeys(ps, 0), lambda _: None)
    (dead,) = reader.poll_batch(10, 1.0)
    assert b"bad signature" in dict(dead.headers)["error"]


def test_the_message_key_is_the_deployments_and_survives_migrate(rig: Rig) -> None:
    """Every process reading the store gets the same key; migrating again keeps it."""
    key = rig.store.message_key()
    rig.store.migrate()
    assert rig.store.message_key() == key and len(key) == 32
