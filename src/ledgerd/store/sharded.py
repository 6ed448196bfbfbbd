"""The Store over several database shards: each partition's rows in one shard.

Routing (docs/scaling.md, "Routing"):

* by user (the shard of the user's partition): balances, journal, rejections and
  new outbox rows; by partition: offsets and partition claims. A consumer batch is
  split by shard, one transaction per shard, each with the offset CAS of its own
  partitions, so each is exactly-once on its own; a group commit of the outbox is
  split the same way.
* by request_id alone (GetChange, the acceptor's duplicate check, the consumer's
  outcome checks, relay marks): every shard, in parallel. A request_id carries no
  user, and a routing table from id to shard would be one more write per request
  on the hot path, in one place; N index lookups in parallel cost one round trip.
* leader locks and the message key: shard 0. The jobs a lock fences on the other
  shards check the lock in shard 0 first (``SqlStore.fence_locks_with``).
* scans: every shard, merged in key order, so ``audit`` and the cache's full sync
  read the whole deployment (each shard's snapshot is consistent on its own).

One shard is never wrapped: ``store_over`` hands out the database's store itself.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from ledgerd.domain.holds import Hold
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    StoredRequest,
)
from ledgerd.domain.partitioning import shard_for_partition, shard_for_user
from ledgerd.errors import Fenced, TransientStoreError
from ledgerd.store.base import (
    BatchCommit,
    ChooseNew,
    LeaderLockRow,
    LockToken,
    PartitionClaim,
    RecordFailure,
    UnsentRequest,
)
from ledgerd.store.sql.core import SqlStore

T = TypeVar("T")
P = TypeVar("P")

# Threads per shard for fan-out reads and per-shard commits: the API's request threads,
# the consumer and the relay may each fan out at once.
_THREADS_PER_SHARD = 8


# Publish groups whose shards ``accept_requests`` remembers (the open ones are a few).
_GROUPS_REMEMBERED = 64


class ShardedStore:
    """The Store interface over ``shards`` (shard 0 first), routing by partition."""

    def __init__(self, shards: Sequence[SqlStore], partition_count: int) -> None:
        if len(shards) < 2:
            raise ValueError("a ShardedStore needs two shards or more; use the store itself")
        self._shards = list(shards)
        self._partition_count = partition_count
        self._pool = ThreadPoolExecutor(
            max_workers=_THREADS_PER_SHARD * len(shards), thread_name_prefix="shard"
        )
        for shard in self._shards[1:]:
            shard.fence_locks_with(self._shards[0])
        # The shards each recent publish group has its row in. By group, not one group per
        # shard: the acceptor's open group spans acceptances while the hold expiry sweep
        # accepts rows of its own groups in between (on another thread).
        self._groups_written: dict[str, set[int]] = {}

    @property
    def shards(self) -> Sequence[SqlStore]:
        return self._shards

    @property
    def partition_count(self) -> int:
        return self._partition_count

    # -- routing --------------------------------------------------------------
    def shard_of_user(self, user_id: int) -> int:
        return shard_for_user(user_id, self._partition_count, len(self._shards))

    def shard_of_partition(self, partition: int) -> int:
        return shard_for_partition(partition, len(self._shards))

    def _each(self, work: Callable[[SqlStore], T]) -> list[T]:
        """``work`` on every shard, in parallel; results in shard order."""
        return self._run([partial(work, shard) for shard in self._shards])

    def _each_part(self, parts: Mapping[int, P], work: Callable[[SqlStore, P], T]) -> list[T]:
        """``work`` on each shard that has a part, with its part, in parallel."""
        return self._run(
            [partial(work, self._shards[i], part) for i, part in sorted(parts.items())]
        )

    def _run(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run the calls (one on the caller's thread, several on the pool); every call ends
        before an error is raised (a Fenced one first), so no write runs on behind it."""
        if len(calls) == 1:
            return [calls[0]()]
        futures: list[Future[T]] = [self._pool.submit(call) for call in calls]
        failed = [error for error in (f.exception() for f in futures) if error is not None]
        if failed:
            raise next((e for e in failed if isinstance(e, Fenced)), failed[0])
        return [f.result() for f in futures]

    def _by_user_shard(self, items: Iterator[tuple[int, T]]) -> dict[int, list[T]]:
        grouped: dict[int, list[T]] = defaultdict(list)
        for user_id, item in items:
            grouped[self.shard_of_user(user_id)].append(item)
        return grouped

    # -- lifecycle ------------------------------------------------------------
    def migrate(self) -> None:
        self._each(lambda shard: shard.migrate())

    def schema_version(self) -> int:
        return min(self._each(lambda shard: shard.schema_version()))

    def ping(self) -> None:
        self._each(lambda shard: shard.ping())

    def close(self) -> None:
        for shard in self._shards:
            shard.close()
        self._pool.shutdown(wait=True)

    def message_key(self) -> bytes:
        return self._shards[0].message_key()

    # -- outbox ---------------------------------------------------------------
    def accept_requests(
        self,
        request_ids: Collection[str],
        choose_new: ChooseNew,
        now_ms: int,
        group_id: str | None = None,
        *,
        new_group: bool = True,
    ) -> Mapping[str, StoredRequest]:
        # The ids may be stored in any shard (a reuse for a user of another shard among
        # them): read them everywhere, so choose_new sees every earlier use.
        existing = self.get_requests(request_ids)
        new = choose_new(existing)
        by_shard = self._by_user_shard((request.user_id, request) for request in new)
        written: set[int] = set()
        if group_id is not None:
            # The least recently used group is forgotten first.
            remembered = self._groups_written.pop(group_id, set())
            written = self._groups_written[group_id] = set() if new_group else remembered
            while len(self._groups_written) > _GROUPS_REMEMBERED:
                del self._groups_written[next(iter(self._groups_written))]

        def insert(shard_index: int, rows: Sequence[ChangeRequest]) -> None:
            def only_if_still_new(found: Mapping[str, StoredRequest]) -> Sequence[ChangeRequest]:
                if found:  # inserted by another process since the read above: decide again
                    raise TransientStoreError(f"request {next(iter(found))} stored meanwhile")
                return rows

            # A group spanning acceptances has its row in each shard that took rows of it,
            # written with the first of them there.
            first_here = shard_index not in written
            self._shards[shard_index].accept_requests(
                [r.request_id for r in rows],
                only_if_still_new,
                now_ms,
                group_id,
                new_group=first_here,
            )
            written.add(shard_index)

        self._run([partial(insert, index, rows) for index, rows in sorted(by_shard.items())])
        return existing

    def get_requests(self, request_ids: Collection[str]) -> Mapping[str, StoredRequest]:
        if not request_ids:
            return {}
        found: dict[str, StoredRequest] = {}
        for part in self._each(lambda shard: shard.get_requests(request_ids)):
            for rid, stored in part.items():
                # A transfer's credit can be in the outbox of one shard (PENDING) and
                # journaled in another: the outcome wins.
                if rid not in found or stored.status.is_final:
                    found[rid] = stored
        return found

    def decided_requests(self, request_ids: Collection[str]) -> Collection[str]:
        if not request_ids:
            return set()
        return {
            rid for part in self._each(lambda s: s.decided_requests(request_ids)) for rid in part
        }

    def delete_groups(self, group_ids: Collection[str]) -> None:
        # A publish group has a row in each shard that took rows of its group commit.
        self._each(lambda shard: shard.delete_groups(group_ids))

    def delete_requests(self, request_ids: Collection[str]) -> None:
        if request_ids:
            self._each(lambda shard: shard.delete_requests(request_ids))

    def delete_stale_groups(
        self, created_before_ms: int, keep: Collection[str], lock: LockToken
    ) -> int:
        return sum(
            self._each(lambda shard: shard.delete_stale_groups(created_before_ms, keep, lock))
        )

    def mark_sent(self, request_ids: Collection[str], now_ms: int) -> None:
        self._each(lambda shard: shard.mark_sent(request_ids, now_ms))

    def mark_failed(self, request_ids: Collection[str], now_ms: int) -> None:
        self._each(lambda shard: shard.mark_failed(request_ids, now_ms))

    def find_unsent(self, created_before_ms: int, limit: int) -> Sequence[UnsentRequest]:
        parts = self._each(lambda shard: shard.find_unsent(created_before_ms, limit))
        # Not cut to ``limit``: a cut could split an atomic group, whose legs go out as one
        # message (each shard keeps its groups whole); at most shards x limit rows.
        return list(heapq.merge(*parts, key=lambda row: row.created_at_ms))

    def count_unfinished(self) -> Mapping[ChangeStatus, int]:
        total: dict[ChangeStatus, int] = defaultdict(int)
        for part in self._each(lambda shard: shard.count_unfinished()):
            for status, count in part.items():
                total[status] += count
        return dict(total)

    def oldest_unfinished_ms(self) -> int | None:
        found = self._each(lambda shard: shard.oldest_unfinished_ms())
        return min((ms for ms in found if ms is not None), default=None)

    def delete_finished_requests(self, created_before_ms: int, limit: int, lock: LockToken) -> int:
        deleted = 0
        for shard in self._shards:  # one shard at a time, the limit shared
            if deleted >= limit:
                break
            deleted += shard.delete_finished_requests(created_before_ms, limit - deleted, lock)
        return deleted

    # -- leader locks: shard 0 --------------------------------------------------
    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        return self._shards[0].acquire_lock(name, owner, ttl_ms)

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        return self._shards[0].renew_lock(token, ttl_ms)

    def release_lock(self, token: LockToken) -> None:
        self._shards[0].release_lock(token)

    def leader_locks(self) -> list[LeaderLockRow]:
        return self._shards[0].leader_locks()

    def raise_fence(self, name: str) -> int:
        return self._shards[0].raise_fence(name)

    def fence_generation(self, name: str) -> int:
        return self._shards[0].fence_generation(name)

    def grant_lease(self, name: str, generation: int, ttl_ms: int) -> bool:
        return self._shards[0].grant_lease(name, generation, ttl_ms)

    # -- consumer -------------------------------------------------------------
    def claim_partition(self, topic: str, partition: int, topic_id: str = "") -> PartitionClaim:
        shard = self._shards[self.shard_of_partition(partition)]
        claim = shard.claim_partition(topic, partition, topic_id)
        # Over every shard: schema 13 recorded each shard's newest journal stamp in its own
        # positions, and a partition's accounts keep their entries in their users' shards.
        newest = max([claim.stamped_at_ms, *self._each(lambda s: s.newest_stamp_ms())])
        return replace(claim, stamped_at_ms=newest)

    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        by_shard = self._by_user_shard((account.user_id, account) for account in accounts)
        found: dict[Account, Balance] = {}
        for part in self._each_part(by_shard, lambda shard, wanted: shard.load_balances(wanted)):
            found.update(part)
        return found

    def load_holds(self, holds: Collection[tuple[int, str]]) -> Mapping[str, Hold]:
        by_shard = self._by_user_shard((user_id, (user_id, hold_id)) for user_id, hold_id in holds)
        found: dict[str, Hold] = {}
        for part in self._each_part(by_shard, lambda shard, wanted: shard.load_holds(wanted)):
            found.update(part)
        return found

    def due_holds(self, now_ms: int, limit: int) -> Sequence[Hold]:
        due = [hold for part in self._each(lambda s: s.due_holds(now_ms, limit)) for hold in part]
        return sorted(due, key=lambda hold: hold.expires_at_ms)

    def scan_holds(self, after: str | None, limit: int) -> Sequence[Hold]:
        pages = self._each(lambda shard: shard.scan_holds(after, limit))
        return _first(pages, limit, lambda hold: hold.hold_id)

    def commit_batch(self, batch: BatchCommit) -> None:
        self._each_part(self.split_batch(batch), lambda shard, part: shard.commit_batch(part))

    def split_batch(self, batch: BatchCommit) -> dict[int, BatchCommit]:
        """The batch's part in each shard it touches: each partition's offset with the
        rows of its users."""
        positions = defaultdict(list)
        for position in batch.positions:
            positions[self.shard_of_partition(position.partition)].append(position)
        journal = self._by_user_shard((e.user_id, e) for e in batch.journal)
        rejections = self._by_user_shard((r.request.user_id, r) for r in batch.rejections)
        holds = self._by_user_shard((h.user_id, h) for h in batch.holds)
        # A follow-up goes to the outbox of the shard whose decision sent it (the user it
        # names as counterparty), in that shard's transaction.
        follow_ups = self._by_user_shard((f.counterparty_user_id, f) for f in batch.follow_ups)
        # Dead letters and failure counts live with their partition's offset.
        dead_letters = defaultdict(list)
        for letter in batch.dead_letters:
            dead_letters[self.shard_of_partition(letter.partition)].append(letter)
        cleared = defaultdict(list)
        for partition in batch.cleared_failures:
            cleared[self.shard_of_partition(partition)].append(partition)
        touched = set(positions) | set(journal) | set(rejections) | set(holds)
        return {
            shard: BatchCommit(
                positions[shard],
                journal.get(shard, []),
                rejections.get(shard, []),
                batch.applied_at_ms,
                follow_ups.get(shard, []),
                batch.follow_up_group if shard in follow_ups else None,
                dead_letters.get(shard, []),
                cleared.get(shard, []),
                holds=holds.get(shard, []),
            )
            for shard in touched | set(follow_ups)
        }

    def count_record_failure(
        self, topic: str, partition: int, offset: int, error: str, now_ms: int
    ) -> int:
        shard = self._shards[self.shard_of_partition(partition)]
        return shard.count_record_failure(topic, partition, offset, error, now_ms)

    def record_failures(self, topic: str) -> Sequence[RecordFailure]:
        found = [f for part in self._each(lambda s: s.record_failures(topic)) for f in part]
        return sorted(found, key=lambda f: f.partition)

    # -- reads ----------------------------------------------------------------
    def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        return self._shards[self.shard_of_user(user_id)].get_balances(user_id, currency)

    def get_journal(
        self, user_id: int, currency: str, after_version: int, limit: int
    ) -> Sequence[JournalEntry]:
        shard = self._shards[self.shard_of_user(user_id)]
        return shard.get_journal(user_id, currency, after_version, limit)

    def journal_version_before(self, user_id: int, currency: str, before_ms: int) -> int:
        shard = self._shards[self.shard_of_user(user_id)]
        return shard.journal_version_before(user_id, currency, before_ms)

    def get_journal_entries(self, request_ids: Collection[str]) -> Mapping[str, JournalEntry]:
        if not request_ids:
            return {}
        found: dict[str, JournalEntry] = {}
        for part in self._each(lambda shard: shard.get_journal_entries(request_ids)):
            found.update(part)
        return found

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        shard = self._shards[self.shard_of_partition(partition)]
        return shard.scan_events(partition, after_seq, limit)

    def get_positions(self, topic: str) -> Mapping[int, int]:
        found: dict[int, int] = {}
        for part in self._each(lambda shard: shard.get_positions(topic)):
            found.update(part)
        return found

    def last_applied_at_ms(self) -> int | None:
        times = [t for t in self._each(lambda shard: shard.last_applied_at_ms()) if t is not None]
        return max(times) if times else None

    # -- scans: every shard, merged in key order ------------------------------
    def snapshot(self) -> AbstractContextManager[None]:
        return self._snapshots()

    @contextmanager
    def _snapshots(self) -> Iterator[None]:
        # Scans run on the caller's thread, so each shard's snapshot is taken here.
        with ExitStack() as stack:
            for shard in self._shards:
                stack.enter_context(shard.snapshot())
            yield

    def scan_balances(self, after: Account | None, limit: int) -> Sequence[Balance]:
        pages = [shard.scan_balances(after, limit) for shard in self._shards]
        return _first(pages, limit, lambda b: (b.user_id, b.currency))

    def scan_journal(
        self, after: tuple[int, str, int] | None, limit: int
    ) -> Sequence[JournalEntry]:
        pages = [shard.scan_journal(after, limit) for shard in self._shards]
        return _first(pages, limit, lambda e: (e.user_id, e.currency, e.version))

    def scan_requests(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        pages = [shard.scan_requests(after, limit) for shard in self._shards]
        return _first(pages, limit, lambda s: s.request.request_id)

    def scan_rejections(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        pages = [shard.scan_rejections(after, limit) for shard in self._shards]
        return _first(pages, limit, lambda s: s.request.request_id)


def _first(pages: Sequence[Sequence[T]], limit: int, key: Callable[[T], Any]) -> list[T]:
    """The first ``limit`` rows of sorted pages merged: the next page of a keyset scan
    over all shards (each page holds its shard's next ``limit`` rows, so none is skipped)."""
    merged = heapq.merge(*pages, key=key)
    return [row for _, row in zip(range(limit), merged, strict=False)]
