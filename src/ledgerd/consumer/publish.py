"""After a commit: everything that follows the store learns the batch's results.

The order matters for "reads never go back in time": the caches and this
consumer's memory hold the new balances before any waiter is woken, so a
caller answered APPLIED cannot then read an older version from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import structlog

from ledgerd.cache.base import BalanceSink
from ledgerd.consumer.feed import CacheFeed
from ledgerd.consumer.memory import BalanceMemory
from ledgerd.domain.model import Account, Balance, JournalEntry
from ledgerd.errors import CacheUnavailable
from ledgerd.events.handoff import CommittedJournal, CommittedSpan
from ledgerd.log.base import LogRecord
from ledgerd.outcomes import OutcomeHub
from ledgerd.store.base import JournalRow, PartitionClaim

# Told what each commit journaled (the event publisher's ``hand_off``); must not block.
OnCommitted = Callable[[CommittedJournal], None]

log = structlog.get_logger(__name__)


class CommitPublisher:
    """Hands committed balances to the in-process sink, memory and the cache feed,
    then wakes waiters; hands committed journals to ``on_committed`` (the event publisher)."""

    def __init__(
        self,
        sink: BalanceSink | None,
        memory: BalanceMemory,
        feed: CacheFeed | None,
        outcomes: OutcomeHub | None,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._sink = sink
        self._memory = memory
        self._feed = feed
        self._outcomes = outcomes
        self._on_committed = on_committed

    def publish(
        self,
        balances: Mapping[Account, Balance],
        partition_of: Mapping[Account, int],
        request_ids: Sequence[str],
    ) -> None:
        """Tell every follower about a committed batch; never raises for a cache outage."""
        self.publish_balances(
            list(balances.values()), [partition_of[a] for a in balances], request_ids
        )

    def publish_balances(
        self, balances: Sequence[Balance], partitions: Sequence[int], request_ids: Sequence[str]
    ) -> None:
        """``publish`` of balances with their partitions, in the same order (one each)."""
        # Just committed by the partition's one writer: the current balances, which may
        # create cache entries.
        if self._sink is not None:
            try:
                self._sink.put_many(balances, create=True)
            except CacheUnavailable as exc:
                # The cache catches up from later batches and its full sync.
                log.warning("cache update failed", error=str(exc))
        self._memory.remember_balances(balances, partitions)
        if self._feed is not None:
            self._feed.publish_balances(balances, partitions)
        if self._outcomes is not None:
            self._outcomes.publish(request_ids)

    def journaled(
        self,
        records: Sequence[LogRecord],
        positions: Sequence[PartitionClaim],
        entries: Sequence[JournalEntry],
        *,
        complete: bool,
        rows: Sequence[JournalRow] | None = None,
        amount_texts: Sequence[str] | None = None,
    ) -> None:
        """Hand a commit's journal entries on, in commit order: the commit applied
        ``records`` and moved its partitions to ``positions``. ``complete``: no request of
        the batch was decided before (see ``CommittedJournal.complete``); ``rows``: the
        entries as rows, where the batch has them, and ``amount_texts`` their amounts as
        text, where it has those."""
        if self._on_committed is not None:
            self._on_committed(
                CommittedJournal(
                    committed_spans(records, positions), entries, complete, rows, amount_texts
                )
            )

    def republish(
        self, balances: Mapping[Account, Balance], partition_of: Mapping[Account, int]
    ) -> None:
        """Hand the caches balances committed earlier (they may have missed them); these
        only raise cache entries, since newer versions may exist."""
        self._to_sink(balances, create=False)
        if self._feed is not None:
            self._feed.publish(balances, partition_of)

    def _to_sink(self, balances: Mapping[Account, Balance], *, create: bool) -> None:
        if self._sink is not None:
            try:
                self._sink.put_many(balances.values(), create=create)
            except CacheUnavailable as exc:
                # The cache catches up from later batches and its full sync.
                log.warning("cache update failed", error=str(exc))

    def poll(self) -> None:
        """Between batches: serve the feed's delivery reports."""
        if self._feed is not None:
            self._feed.poll()

    def close(self) -> None:
        if self._feed is not None:
            self._feed.close()


def committed_spans(
    records: Sequence[LogRecord], positions: Sequence[PartitionClaim]
) -> list[CommittedSpan]:
    """(partition, first offset applied, next offset) of each partition a commit moved."""
    # A partition's records come in offset order (the intake admits only each partition's
    # next offset; a retry or an isolated part keeps the order): its first is its oldest.
    # Read backwards, the first of each partition is the one left in the dict, at C speed.
    first = {record.partition: record.offset for record in reversed(records)}
    return [(p.partition, first.get(p.partition, p.next_offset), p.next_offset) for p in positions]
