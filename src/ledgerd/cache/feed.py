"""Publishing committed balances to the cache feed, for cache updaters in any process.

Transitional: the consumer is to publish the feed itself (branch
consumer-split); until then app.py hands it this sink after each commit.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from ledgerd import metrics
from ledgerd.domain.model import Balance
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import LedgerError
from ledgerd.log.base import EventLog
from ledgerd.log.codec import encode_balance

log = structlog.get_logger(__name__)


class FeedPublisher:
    """BalanceSink publishing each balance keyed by user id, on the account's partition."""

    def __init__(self, event_log: EventLog, topic: str) -> None:
        self._topic = topic
        self._partitions = event_log.partition_count
        event_log.ensure_topics([topic])
        self._producer = event_log.producer()

    def put_many(self, balances: Iterable[Balance]) -> None:
        """Queue the balances; never raises (the full sync repairs a lost message)."""
        try:
            for balance in balances:
                self._producer.publish(
                    self._topic,
                    str(balance.user_id).encode(),
                    encode_balance(balance),
                    partition=partition_for_user(balance.user_id, self._partitions),
                    on_delivery=_report,
                )
            self._producer.poll(0)
        except LedgerError as exc:
            metrics.CACHE_UPDATE_FAILURES.inc()
            log.warning("cache feed publish failed", error=str(exc))

    def close(self) -> None:
        self._producer.close()


def _report(error: Exception | None) -> None:
    if error is not None:
        metrics.CACHE_UPDATE_FAILURES.inc()
        log.warning("cache feed message not delivered", error=str(error))
