"""A request id is journaled at most once, whatever path repeats it, on every store backend.

The journal's unique request_id index is the last guard of DESIGN.md §3 (the offset's
compare-and-set and the consumer's outcome reads are the first): a commit that would
journal an id a second time fails whole, retriably, and the consumer's retry reads the
outcome and skips the copy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ledgerd.cache.memory import MemoryCache
from ledgerd.consumer.config import ConsumerConfig
from ledgerd.consumer.worker import BatchConsumer
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Balance, ChangeRequest, ChangeType, JournalEntry
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.errors import TransientStoreError
from ledgerd.log.codec import encode_change
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.log.signing import MessageSigner
from ledgerd.store.base import BatchCommit, PartitionClaim, Store

TOPIC, DLQ = "balance-changes", "balance-changes-dlq"


def deposit(request_id: str, user: int = 1) -> ChangeRequest:
    return ChangeRequest(request_id, user, "USD", ChangeType.DEPOSIT, SCALE)


def journaled(request: ChangeRequest, version: int, seq: int) -> JournalEntry:
    return JournalEntry(
        request.request_id, request.user_id, request.currency, request.type, request.amount,
        version * SCALE, 0, version, 5000, partition=0, event_seq=seq,
    )  # fmt: skip


def commit(store: Store, epoch: int, next_offset: int, journal: list[JournalEntry]) -> None:
    store.commit_batch(
        BatchCommit(
            [PartitionClaim(TOPIC, 0, epoch, next_offset)],
            journal,
            [],
            5000,
        )
    )


def test_a_journaled_request_id_is_refused_in_a_later_commit(store: Store) -> None:
    """A later batch that journals an id again (a resend decided as new) fails retriably
    and writes nothing: no second row, balance and offset as the first commit left them."""
    first = deposit("once")
    store.accept_requests(["once"], lambda _: [first], 1000)
    epoch = store.claim_partition(TOPIC, 0).epoch
    commit(store, epoch, 1, [journaled(first, 1, 1)])
    with pytest.raises(TransientStoreError):
        commit(store, epoch, 2, [journaled(first, 2, 2)])
    assert [e.version for e in store.get_journal(1, "USD", 0, 10)] == [1]
    assert store.get_balances(1, "USD") == [Balance(1, "USD", SCALE, 0, 1)]
    assert store.get_positions(TOPIC) == {0: 1}


def test_a_request_id_twice_in_one_commit_is_refused(store: Store) -> None:
    """One batch that journals an id twice fails whole and writes nothing."""
    twice = deposit("twice")
    store.accept_requests(["twice"], lambda _: [twice], 1000)
    epoch = store.claim_partition(TOPIC, 0).epoch
    with pytest.raises(TransientStoreError):
        commit(store, epoch, 2, [journaled(twice, 1, 1), journaled(twice, 2, 2)])
    assert store.get_journal(1, "USD", 0, 10) == []
    assert store.get_balances(1, "USD") == []
    assert store.get_positions(TOPIC) == {0: 0}


@pytest.fixture
def event_log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    log.ensure_topics([TOPIC, DLQ])
    yield log
    log.close()


def test_a_copy_delivered_as_new_is_applied_once(store: Store, event_log: EmbeddedLog) -> None:
    """A second delivery of a change's first publication in a later batch (signed, not
    resent, just accepted: the consumer applies it without reading its outcome) is stopped
    by the journal's unique id; the retry reads the outcome and skips it."""
    request = deposit("copied", user=1)
    now_ms = int(time.time() * 1000)
    store.accept_requests(["copied"], lambda _: [request], now_ms)
    signer = MessageSigner(store.message_key())
    value = encode_change(request, accepted_at_ms=now_ms)  # as the API publishes it
    partition = partition_for_user(1, 3)
    config = ConsumerConfig(topic=TOPIC, dlq_topic=DLQ, poll_timeout_s=0.1, retry_base_s=0.01)
    consumer = BatchConsumer(store, event_log, MemoryCache(), None, config, signer=signer)
    producer = event_log.producer()
    retries = REGISTRY.get_sample_value("ledgerd_consumer_retries_total") or 0.0
    for _ in range(2):
        producer.publish(
            TOPIC, user_key(1), value, partition=partition, headers=signer.headers(value)
        )
        producer.flush(5)
        consumer.run_until_idle()
    assert REGISTRY.get_sample_value("ledgerd_consumer_retries_total") == retries + 1
    assert store.get_positions(TOPIC)[partition] == 2
    assert [e.request_id for e in store.get_journal(1, "USD", 0, 10)] == ["copied"]
    assert store.get_balances(1, "USD") == [Balance(1, "USD", SCALE, 0, 1)]
