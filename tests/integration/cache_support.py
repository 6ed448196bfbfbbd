"""Shared by the cache role tests: a checker that no read goes back in time."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max of samples in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


@dataclass
class MonotonicReads:
    """Client-side record of docs/architecture.md §1: a read returns at least the newest
    version that was acknowledged (APPLIED to wait=true) or returned by a read completed
    before it began."""

    acknowledged: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    returned: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    violations: list[str] = field(default_factory=list)
    reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def progress(self) -> tuple[int, int]:
        """(reads completed, versions acknowledged) so far."""
        with self.lock:
            return self.reads, sum(self.acknowledged.values())

    def acknowledge(self, user: int, version: int) -> None:
        with self.lock:
            self.acknowledged[user] = max(self.acknowledged[user], version)

    def floor(self, user: int) -> tuple[int, int]:
        """What a read of ``user`` beginning now must at least return: (acked, read)."""
        with self.lock:
            return self.acknowledged[user], self.returned[user]

    def completed(self, user: int, version: int, floor: tuple[int, int], where: str) -> None:
        with self.lock:
            self.reads += 1
            acked, read = floor
            if version < acked or version < read:
                self.violations.append(
                    f"{time.strftime('%H:%M:%S')} user {user} via {where}: read version"
                    f" {version}, acknowledged {acked}, earlier read {read}"
                )
            self.returned[user] = max(self.returned[user], version)
