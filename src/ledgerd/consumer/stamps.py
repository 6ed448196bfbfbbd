"""The stamp a consumer gives a batch (``applied_at_ms``): when it was applied.

An account's stamps never fall as its versions rise, so that "as of a moment" is one
lookup by halving its versions (``Store.journal_version_before``; docs/api.md, *Time*).
One consumer applies a partition in log order, but a partition moves: to a consumer
whose clock is behind the last one's, after a failover, or when a clock is stepped back.
So a batch is stamped with this machine's clock, or, while that is behind, with the
newest stamp the store had recorded when a partition was claimed (every batch records
its stamp with its offsets), or the last stamp given here.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class BatchStamps:
    """Batch stamps from a clock that is never read backwards."""

    def __init__(self, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._clock_ms = clock_ms
        self._floor_ms = 0

    def claimed(self, stamped_at_ms: int) -> None:
        """A partition was claimed while the store's newest stamp was ``stamped_at_ms``."""
        self._floor_ms = max(self._floor_ms, stamped_at_ms)

    def next(self) -> int:
        """The stamp for the batch being decided: the clock, or the floor while it is behind."""
        stamp = max(self._clock_ms(), self._floor_ms)
        self._floor_ms = stamp
        return stamp
