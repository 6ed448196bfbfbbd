"""The cache feed: committed balances published for cache updaters in any process.

One record per batch and partition: the newest balance of each account the
batch touched in that partition, as columns (``BalanceBatchMessage``; a very
large batch takes several records, in order). It goes to that partition, keyed
by its first balance's user id, so a reader sees each account's versions in
order; the broker and the readers pay per record, not per balance. Delivery is
never awaited: the batch is committed already, and a lost record only leaves
cache entries stale until the cache's full sync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from ledgerd import metrics
from ledgerd.domain.model import Account, Balance
from ledgerd.domain.partitioning import user_key
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import DeliveryCallback, LogProducer
from ledgerd.log.codec import FEED_RECORD_BALANCES_MAX, encode_balances

log = structlog.get_logger(__name__)

_CLOSE_FLUSH_TIMEOUT_S = 10.0


class CacheFeed:
    """Publishes balances to the feed topic without blocking on delivery."""

    def __init__(self, producer: LogProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._failed = 0
        self._first_error = ""
        self._closed = False

    def publish(
        self, balances: Mapping[Account, Balance], partition_of: Mapping[Account, int]
    ) -> None:
        """Queue each partition's balances as one record (or a few, for a very large batch);
        delivery is reported by later ``poll`` calls."""
        self.publish_balances(list(balances.values()), [partition_of[a] for a in balances])

    def publish_balances(self, balances: Sequence[Balance], partitions: Sequence[int]) -> None:
        """``publish`` of balances with their partitions, in the same order."""
        by_partition: dict[int, list[Balance]] = {}
        for balance, partition in zip(balances, partitions, strict=True):
            found = by_partition.get(partition)
            if found is None:
                by_partition[partition] = [balance]
            else:
                found.append(balance)
        sent = records = 0
        try:
            for partition, held in by_partition.items():
                for start in range(0, len(held), FEED_RECORD_BALANCES_MAX):
                    chunk = held[start : start + FEED_RECORD_BALANCES_MAX]
                    self._producer.publish(
                        self._topic,
                        user_key(chunk[0].user_id),
                        encode_balances(chunk),
                        partition=partition,
                        on_delivery=self._on_delivery(len(chunk)),
                    )
                    sent += len(chunk)
                    records += 1
        except LogUnavailable as exc:
            # A full or closed queue: the rest of this batch's balances are not fed.
            self._count_failures(len(balances) - sent, str(exc))
        metrics.CACHE_FEED_MESSAGES.inc(sent)
        metrics.CACHE_FEED_RECORDS.inc(records)

    def poll(self) -> None:
        """Serve delivery reports without waiting (call between batches); logs failures
        since the last call."""
        self._producer.poll(0.0)
        if self._failed:
            log.warning(
                "cache feed messages not delivered; the cache's full sync repairs them",
                count=self._failed,
                first_error=self._first_error,
            )
            self._failed, self._first_error = 0, ""

    def close(self) -> None:
        """Deliver what is queued (briefly) and release the producer; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._producer.flush(_CLOSE_FLUSH_TIMEOUT_S)
        self.poll()
        self._producer.close()

    def _on_delivery(self, balance_count: int) -> DeliveryCallback:
        def delivered(error: Exception | None) -> None:
            if error is not None:
                self._count_failures(balance_count, str(error))

        return delivered

    def _count_failures(self, count: int, error: str) -> None:
        metrics.CACHE_FEED_FAILURES.inc(count)
        self._failed += count
        self._first_error = self._first_error or error
