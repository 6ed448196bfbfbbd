"""The cache feed: committed balances published for cache updaters in any process.

One message per account per batch (its newest version), keyed by user id and
sent to the account's partition, so a reader sees each account's versions in
order. Delivery is never awaited: the batch is committed already, and a lost
message only leaves a cache entry stale until the cache's full sync.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from ledgerd import metrics
from ledgerd.domain.model import Account, Balance
from ledgerd.domain.partitioning import user_key
from ledgerd.errors import LogUnavailable
from ledgerd.log.base import LogProducer
from ledgerd.log.codec import encode_balance

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
        """Queue each balance; delivery is reported by later ``poll`` calls."""
        sent = 0
        try:
            for account, balance in balances.items():
                self._producer.publish(
                    self._topic,
                    user_key(account.user_id),
                    encode_balance(balance),
                    partition=partition_of[account],
                    on_delivery=self._delivered,
                )
                sent += 1
        except LogUnavailable as exc:
            # A full or closed queue: the rest of this batch's balances are not fed.
            self._count_failures(len(balances) - sent, str(exc))
        metrics.CACHE_FEED_MESSAGES.inc(sent)

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

    def _delivered(self, error: Exception | None) -> None:
        if error is not None:
            self._count_failures(1, str(error))

    def _count_failures(self, count: int, error: str) -> None:
        metrics.CACHE_FEED_FAILURES.inc(count)
        self._failed += count
        self._first_error = self._first_error or error
