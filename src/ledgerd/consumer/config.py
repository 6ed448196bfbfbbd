"""The batch consumer's settings, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    topic: str = "balance-changes"
    dlq_topic: str = "balance-changes-dlq"
    group_id: str = "balance-consumer-group"
    batch_max_messages: int = 200
    batch_delay_s: float = 0.05
    poll_timeout_s: float = 1.0
    max_retries: int = 3
    # Tries of a record whose decision raises before it is dead-lettered (counted durably).
    max_decision_failures: int = 3
    retry_base_s: float = 0.1
    pause_s: float = 5.0
    max_accounts_in_memory: int = 1_000_000  # over all owned partitions
    # The cache feed topic: every committed balance is published there for cache
    # updaters in any process. None when the cache is in-process (fed directly).
    feed_topic: str | None = None
    # A signed, first-time message accepted less than this long ago is applied without
    # reading its outcome: the sweep republishes a row only once it is older than the
    # relay's sweep age (twice this by default), so no copy of it can have come first.
    trust_window_s: float = 15.0
