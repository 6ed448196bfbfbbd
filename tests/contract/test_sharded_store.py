"""The ShardedStore on two real MariaDB servers: where each row lands, and what a batch
or a group commit spanning both shards does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from store_contract_support import FakeClock, sharded_mysql_store
from test_store_contract import accept, entry, request

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Balance, ChangeStatus, Rejection, RejectReason
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import Fenced, RequestConflict
from ledgerd.outbox.planning import plan_acceptance
from ledgerd.store.base import BatchCommit, LockToken, PartitionClaim
from ledgerd.store.sharded import ShardedStore

# With 3 partitions on 2 shards: partitions 0 and 2 in shard 0, partition 1 in shard 1.
USER_P0, USER_P1, USER_P2 = 1, 4, 2


@pytest.fixture
def sharded() -> Iterator[ShardedStore]:
    with sharded_mysql_store() as store:
        yield store


def test_the_example_users_are_in_the_partitions_the_tests_say() -> None:
    assert [partition_for_user(u, 3) for u in (USER_P0, USER_P1, USER_P2)] == [0, 1, 2]


def commit_one_each(store: ShardedStore) -> None:
    """One batch over partitions 0, 1 and 2: a deposit for each partition's user."""
    users = {0: USER_P0, 1: USER_P1, 2: USER_P2}
    requests = {p: request(10 + p, user=u) for p, u in users.items()}
    accept(store, list(requests.values()))
    claims = {p: store.claim_partition("t", p) for p in users}
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", p, claims[p].epoch, 5) for p in users],
            [entry(requests[p], 1, SCALE) for p in users],
            [Rejection(request(20, user=USER_P1), RejectReason.INSUFFICIENT_AVAILABLE)],
            5000,
        )
    )


def test_rows_of_partition_p_exist_only_in_shard_p_mod_2(sharded: ShardedStore) -> None:
    """Balances, journal, rejections, outbox rows and offsets of a partition are in its
    shard and nowhere else."""
    zero, one = sharded.shards
    waiting = [request(30 + p, user=u) for p, u in enumerate((USER_P0, USER_P1, USER_P2))]
    accept(sharded, waiting)
    commit_one_each(sharded)
    assert {b.user_id for b in zero.scan_balances(None, 100)} == {USER_P0, USER_P2}
    assert {b.user_id for b in one.scan_balances(None, 100)} == {USER_P1}
    assert {e.user_id for e in zero.scan_journal(None, 100)} == {USER_P0, USER_P2}
    assert {e.user_id for e in one.scan_journal(None, 100)} == {USER_P1}
    assert [r.request.request_id for r in one.scan_rejections(None, 100)] == ["r20"]
    assert zero.scan_rejections(None, 100) == []
    # the outbox rows still waiting (the commit deleted those it decided)
    assert [r.request.request_id for r in zero.scan_requests(None, 100)] == ["r30", "r32"]
    assert [r.request.request_id for r in one.scan_requests(None, 100)] == ["r31"]
    assert zero.get_positions("t") == {0: 5, 2: 5}
    assert one.get_positions("t") == {1: 5}
    # and the store reads them back as one
    assert sharded.get_positions("t") == {0: 5, 1: 5, 2: 5}
    assert sharded.get_balances(USER_P1, "USD") == [Balance(USER_P1, "USD", SCALE, 0, 1)]
    assert set(sharded.decided_requests(["r10", "r11", "r12", "r20", "r99"])) == {
        "r10", "r11", "r12", "r20"
    }  # fmt: skip
    assert [b.user_id for b in sharded.scan_balances(None, 2)] == [USER_P0, USER_P2]
    assert [
        b.user_id for b in sharded.scan_balances(sharded.scan_balances(None, 2)[-1].account, 2)
    ] == [USER_P1]


def test_a_batch_over_two_shards_commits_each_shard_on_its_own(sharded: ShardedStore) -> None:
    """A stale epoch in shard 1 fences shard 1's part only: shard 0's partitions commit
    with their own offset (the consumer then retries, reading every outcome)."""
    first, second = request(1, user=USER_P0), request(2, user=USER_P1)
    accept(sharded, [first, second])
    zero = sharded.claim_partition("t", 0)
    stale = sharded.claim_partition("t", 1)
    sharded.claim_partition("t", 1)
    with pytest.raises(Fenced) as raised:
        sharded.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 0, zero.epoch, 3), PartitionClaim("t", 1, stale.epoch, 3)],
                [entry(first, 1, SCALE), entry(second, 1, SCALE)],
                [],
                5000,
            )
        )
    assert raised.value.partition == 1
    assert sharded.get_positions("t") == {0: 3, 1: 0}
    assert sharded.get_requests(["r1", "r2"])["r1"].status is ChangeStatus.APPLIED
    assert sharded.get_requests(["r2"])["r2"].status is ChangeStatus.PENDING
    assert sharded.get_balances(USER_P1, None) == []


def test_a_group_commit_splits_by_shard_with_its_publish_group_in_each(
    sharded: ShardedStore,
) -> None:
    requests = [request(1, user=USER_P0), request(2, user=USER_P1)]
    sharded.accept_requests(
        [r.request_id for r in requests], lambda stored: requests, 1000, group_id="g1"
    )
    zero, one = sharded.shards
    assert [r.request.request_id for r in zero.scan_requests(None, 10)] == ["r1"]
    assert [r.request.request_id for r in one.scan_requests(None, 10)] == ["r2"]
    # the group's row in each shard: until the group is known published, the sweep
    # finds the rows of both shards; once it is, neither
    assert [u.stored.request.request_id for u in sharded.find_unsent(2000, 10)] == ["r1", "r2"]
    sharded.delete_groups(["g1"])
    assert sharded.find_unsent(2000, 10) == []
    epoch = sharded.acquire_lock("outbox", "me", 60_000)
    assert epoch is not None
    assert sharded.delete_stale_groups(10**13, [], LockToken("outbox", "me", epoch)) == 0


def test_a_request_id_reused_for_a_user_of_another_shard_is_a_conflict(
    sharded: ShardedStore,
) -> None:
    """The acceptor's duplicate check reads every shard, so the second use is refused."""
    accept(sharded, [request(1, user=USER_P0)])
    reuse = request(1, user=USER_P1)
    plans = []

    def choose(stored: object) -> list[object]:
        new, decided = plan_acceptance([[reuse]], stored)  # type: ignore[arg-type]
        plans.extend(decided)
        return list(new)

    sharded.accept_requests(["r1"], choose, 2000)  # type: ignore[arg-type]
    assert isinstance(plans[0].conflict, RequestConflict)
    assert sharded.shards[1].scan_requests(None, 10) == []


def test_leader_locks_live_in_shard_zero_and_fence_every_shard_s_cleanup() -> None:
    clock = FakeClock()
    with sharded_mysql_store(clock_ms=clock) as sharded:
        accept(sharded, [request(1, user=USER_P1)], now_ms=1000)
        epoch = sharded.acquire_lock("outbox", "me", ttl_ms=1000)
        assert epoch is not None
        assert sharded.shards[1].acquire_lock("outbox", "other", ttl_ms=1000) is not None
        token = LockToken("outbox", "me", epoch)
        clock.advance(1000)  # expired in shard 0, though shard 1's own table says otherwise
        with pytest.raises(Fenced):
            sharded.delete_finished_requests(5000, 100, token)
        with pytest.raises(Fenced):
            sharded.shards[1].delete_stale_groups(5000, [], token)
