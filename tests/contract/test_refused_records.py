"""A record the store refuses every time costs its partition one DLQ entry, on every store.

The refusal is the test's own: a CHECK constraint on the journal's memo (a trigger on
SQLite, which cannot add one to a table) in the test's own database, so one record's
values are refused deterministically while every other record passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog.testing
from harness import fresh_mysql_store

from ledgerd.cache.memory import MemoryCache
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import (
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
)
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import StoreRejected
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.relay import Relay
from ledgerd.store.base import BatchCommit, DeadLettered, PartitionClaim, RecordFailure, Store
from ledgerd.store.sharded import ShardedStore
from ledgerd.store.sql.core import SqlStore

TOPIC, DLQ = "balance-changes", "balance-changes-dlq"
REFUSED_MEMO = "refused-by-the-store"
# Users A, B and C fall in three different partitions of 3 (murmur2): a batch spans them all.
A, B, C = 1, 4, 2


def refuse_memo(store: Store) -> None:
    """From now on the store refuses, every time, a journal entry with REFUSED_MEMO."""
    shards = store.shards if isinstance(store, ShardedStore) else [store]
    for shard in shards:
        assert isinstance(shard, SqlStore)
        with shard.dialect.autocommit() as session:
            if shard.dialect.name == "mysql":
                session.execute(
                    "ALTER TABLE journal ADD CONSTRAINT test_refused_memo"
                    f" CHECK (memo <> '{REFUSED_MEMO}')"
                )
            else:
                session.execute(
                    "CREATE TRIGGER test_refused_memo BEFORE INSERT ON journal"
                    f" WHEN NEW.memo = '{REFUSED_MEMO}'"
                    " BEGIN SELECT RAISE(ABORT, 'memo refused'); END"
                )


def deposit(request_id: str, user_id: int, memo: str = "") -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, SCALE, memo)


def journal_entry(change: ChangeRequest) -> JournalEntry:
    return JournalEntry(
        change.request_id, change.user_id, change.currency, change.type, change.amount,
        change.amount, 0, 1, 5000, change.memo,
    )  # fmt: skip


def accept_in_order(store: Store, *requests: ChangeRequest) -> None:
    """Accepted one after another, so the relay publishes them in this order."""
    for index, request in enumerate(requests):
        store.accept_requests(
            [request.request_id],
            lambda stored, r=request: [] if stored else [r],  # type: ignore[misc]
            1000 + index,
        )


def available(store: Store, user_id: int) -> int:
    found = store.get_balances(user_id, "USD")
    return found[0].available if found else 0


@pytest.fixture
def event_log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=3)
    log.ensure_topics([TOPIC, DLQ])
    yield log
    log.close()


def test_a_refused_commit_raises_store_rejected_and_writes_nothing(store: Store) -> None:
    """A batch holding values the store refuses fails with a non-retriable StoreRejected;
    its offset, balances and journal stay as they were."""
    refuse_memo(store)
    change = deposit("poison", A, REFUSED_MEMO)
    partition = partition_for_user(A, 3)
    claim = store.claim_partition("t", partition)
    with pytest.raises(StoreRejected) as refused:
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", partition, claim.epoch, 1)],
                [journal_entry(change)],
                [],
                5000,
            )
        )
    assert not refused.value.retriable
    assert store.get_positions("t") == {partition: 0}
    assert store.get_balances(A, "USD") == []


def test_a_dead_lettered_request_reads_failed_until_it_has_an_outcome(store: Store) -> None:
    """A commit that moves a partition past a dead-lettered record records its request:
    it reads FAILED (not PENDING for ever); applied later (a replay), it reads APPLIED."""
    change = deposit("dead", A)
    accept_in_order(store, change)
    partition = partition_for_user(A, 3)
    claim = store.claim_partition("t", partition)
    letter = DeadLettered("dead", "t", partition, 0, "store_rejected", "STORE_REJECTED: x")
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", partition, claim.epoch, 1)], [], [], 5000,
            dead_letters=[letter],
        )
    )  # fmt: skip
    assert store.get_positions("t") == {partition: 1}
    assert store.get_requests(["dead"])["dead"].status is ChangeStatus.FAILED
    assert store.get_requests(["dead"])["dead"].request == change
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", partition, claim.epoch, 2)],
            [journal_entry(change)],
            [],
            6000,
        )
    )
    assert store.get_requests(["dead"])["dead"].status is ChangeStatus.APPLIED


def test_the_sweep_never_publishes_a_dead_lettered_request_again(store: Store) -> None:
    """A dead-lettered request whose delivery was reported failed (FAILED outbox row) is
    not found by the sweep: publishing it again would only dead-letter it again."""
    accept_in_order(store, deposit("dead", A), deposit("lost", A))
    store.mark_failed(["dead", "lost"], 2000)
    partition = partition_for_user(A, 3)
    claim = store.claim_partition("t", partition)
    letter = DeadLettered("dead", "t", partition, 0, "store_rejected", "STORE_REJECTED: x")
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", partition, claim.epoch, 1)], [], [], 5000,
            dead_letters=[letter],
        )
    )  # fmt: skip
    unsent = store.find_unsent(created_before_ms=10_000, limit=10)
    assert [u.stored.request.request_id for u in unsent] == ["lost"]


def test_record_failures_count_per_record_and_go_once_the_partition_moves_past(
    store: Store,
) -> None:
    """Failures of the same record add up; another record of the partition starts again at 1;
    a commit that moves the partition past the counted record forgets the count."""
    partition = partition_for_user(B, 3)
    claim = store.claim_partition("t", partition)
    assert store.count_record_failure("t", partition, 5, "boom", 1000) == 1
    assert store.count_record_failure("t", partition, 5, "boom", 2000) == 2
    assert store.record_failures("t") == [RecordFailure(partition, 5, 2)]
    assert store.count_record_failure("t", partition, 6, "boom", 3000) == 1
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", partition, claim.epoch, 6)], [], [], 5000,
            cleared_failures=[partition],
        )
    )  # fmt: skip
    assert store.record_failures("t") == [RecordFailure(partition, 6, 1)]  # not past 6 yet
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", partition, claim.epoch, 7)], [], [], 5000,
            cleared_failures=[partition],
        )
    )  # fmt: skip
    assert store.record_failures("t") == []


def test_a_refused_record_goes_to_the_dlq_and_the_rest_of_its_batch_commits(
    store: Store, event_log: EmbeddedLog
) -> None:
    """One batch over three partitions; one record is refused by the store every time. It
    lands in the DLQ with the error and its reason; every other record applies, including
    those after it in its own partition; no partition is paused; each partition's offset
    is at the end of the log; the refused request reads FAILED."""
    refuse_memo(store)
    accept_in_order(
        store, deposit("a1", A), deposit("poison", A, REFUSED_MEMO), deposit("a2", A),
        deposit("b1", B), deposit("c1", C), deposit("a3", A),
    )  # fmt: skip
    signer = MessageSigner(store.message_key())
    Relay(store, event_log.producer(), signer, topic=TOPIC, partition_count=3).run_until_idle()
    config = ConsumerConfig(topic=TOPIC, dlq_topic=DLQ, poll_timeout_s=0.1, pause_s=600.0)
    consumer = BatchConsumer(store, event_log, MemoryCache(), None, config, signer=signer)
    try:
        with structlog.testing.capture_logs() as logs:
            assert consumer.run_until_idle() == 6
        assert consumer.paused_partitions == []
    finally:
        consumer.close()
    (logged,) = [e for e in logs if e["event"] == "record dead-lettered"]
    assert (logged["partition"], logged["offset"]) == (partition_for_user(A, 3), 1)
    assert logged["reason"] == "store_rejected" and logged["request_ids"] == ["poison"]
    assert logged["error"].startswith("STORE_REJECTED")
    assert (available(store, A), available(store, B), available(store, C)) == (
        3 * SCALE, SCALE, SCALE,
    )  # fmt: skip
    assert store.get_positions(TOPIC) == event_log.end_offsets(TOPIC)
    assert store.get_requests(["poison"])["poison"].status is ChangeStatus.FAILED
    reader = event_log.consumer("dlq-reader")
    reader.subscribe(DLQ, lambda ps: dict.fromkeys(ps, 0), lambda _: None)
    (letter,) = reader.poll_batch(10, 0.5)
    reader.close()
    headers = dict(letter.headers)
    assert headers["reason"] == b"store_rejected"
    assert headers["error"].startswith(b"STORE_REJECTED")
    assert headers["source-partition"] == str(partition_for_user(A, 3)).encode()
    assert headers["source-offset"] == b"1"


def test_a_memo_too_long_for_its_column_is_refused_not_retried() -> None:
    """On MariaDB, a value the column cannot hold (1406, data too long) is StoreRejected."""
    with fresh_mysql_store() as store:
        change = deposit("long", A, "m" * 300)  # the column holds 256 characters
        claim = store.claim_partition("t", 0)
        with pytest.raises(StoreRejected) as refused:
            store.commit_batch(
                BatchCommit([PartitionClaim("t", 0, claim.epoch, 1)], [journal_entry(change)],
                            [], 5000)
            )  # fmt: skip
        assert refused.value.code == 1406
