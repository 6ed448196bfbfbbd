"""Journal entries handed from the consumer to the event publisher right after their commit.

The consumer's thread puts, the publisher's takes, in commit order. The queue is bounded
by what it holds (entries, plus one per hand-off): a hand-off that does not fit is dropped
and only where its partitions stood after it is kept, so that the publisher reads those
entries from the journal instead. The consumer never waits for the publisher.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ledgerd import metrics
from ledgerd.domain.model import JournalEntry
from ledgerd.store.base import JournalRow

# (partition, the first log offset a commit applied, the partition's next offset after it)
CommittedSpan = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class CommittedJournal:
    """What one consumer commit journaled."""

    # Each partition the commit moved, and over which log offsets.
    spans: Sequence[CommittedSpan]
    # The commit's journal entries in commit order: per partition in event_seq order.
    entries: Sequence[JournalEntry]
    # Whether ``entries`` holds every entry journaled at the spans' offsets. False when
    # the batch met requests already decided: a commit that failed ambiguously (and was
    # retried) may have journaled some of them, and only the journal has those.
    complete: bool = True
    # The same entries as rows in ``JournalEntry``'s field order (the consumer's column
    # path), published without making the entries; None where only the entries exist.
    rows: Sequence[JournalRow] | None = None
    # Each row's amount as ``format_amount`` writes it (from the change messages), where
    # the consumer has them; None otherwise (and always without rows).
    amount_texts: Sequence[str] | None = None


class HandOffQueue:
    """A bounded FIFO of committed journals, from one thread to another."""

    def __init__(self, max_events: int) -> None:
        self._max_events = max_events
        self._lock = threading.Lock()
        self._queued: list[CommittedJournal] = []
        self._held = 0
        # Partition -> the next offset after the newest commit dropped.
        self._dropped: dict[int, int] = {}

    def put(self, committed: CommittedJournal) -> bool:
        """Queue ``committed``, or drop it when the queue is full; whether it was queued."""
        size = len(committed.entries) + 1
        with self._lock:
            if self._held + size <= self._max_events:
                self._queued.append(committed)
                self._held += size
                return True
            dropped = self._dropped
            for partition, _, next_offset in committed.spans:
                if dropped.get(partition, -1) < next_offset:
                    dropped[partition] = next_offset
        metrics.EVENTS_HANDOFFS_DROPPED.inc()
        return False

    def take(self) -> tuple[list[CommittedJournal], dict[int, int]]:
        """Everything queued, in commit order, and, by partition, the next offset after the
        newest commit dropped since the last take (the journal holds those entries: read it
        up to there)."""
        with self._lock:
            queued, self._queued, self._held = self._queued, [], 0
            dropped, self._dropped = self._dropped, {}
        return queued, dropped

    def __bool__(self) -> bool:
        """Whether anything waits to be taken (a hand-off, or a drop)."""
        return bool(self._queued or self._dropped)
