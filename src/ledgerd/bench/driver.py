"""Concurrent closed-loop callers with latency recording and a progress line."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from ledgerd.bench.progress import Progress, call_status


@dataclass
class Measurement:
    """What the callers did: operations (changes or calls) and per-call latencies."""

    operations: int = 0
    calls: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    # Wall-clock time the first call was sent (comparable with the journal's applied_at_ms).
    started_at_s: float = 0.0

    def percentile_ms(self, share: float) -> float:
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, int(share * len(ordered)))
        return ordered[index] * 1000

    @property
    def rate(self) -> float:
        return self.operations / self.elapsed_s if self.elapsed_s else 0.0


# One call; returns how many operations it carried (1, or a batch's size).
Call = Callable[[int], Awaitable[int]]


async def run_callers(
    call: Call, *, concurrency: int, duration_s: float, label: str, progress: bool = True
) -> Measurement:
    """Run ``concurrency`` callers back to back for ``duration_s``."""
    measured = Measurement()
    deadline = time.monotonic() + duration_s

    async def caller(index: int) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                done = await call(index)
            except grpc.aio.AioRpcError as exc:
                measured.errors[exc.code().name] += 1
                continue
            measured.latencies_s.append(time.perf_counter() - started)
            measured.operations += done
            measured.calls += 1

    def status() -> str:
        elapsed = time.monotonic() - started
        return call_status(
            measured.operations, measured.calls, sum(measured.errors.values()), elapsed
        )

    async def report(shown: Progress) -> None:
        while True:
            await asyncio.sleep(1.0)
            shown.update(status())

    started = time.monotonic()
    measured.started_at_s = time.time()
    shown = Progress(label) if progress else None
    reporter = asyncio.create_task(report(shown)) if shown is not None else None
    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    measured.elapsed_s = time.monotonic() - started
    if reporter is not None:
        reporter.cancel()
    if shown is not None:
        shown.finish(status())
    return measured
