"""Concurrent closed-loop callers with latency recording and a live progress line."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc


@dataclass
class Measurement:
    """What the callers did: operations (changes or calls) and per-call latencies."""

    operations: int = 0
    calls: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

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

    async def report() -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.monotonic() - started
            sys.stderr.write(
                f"\r  {label}: {elapsed:4.0f}s  {measured.operations / elapsed:>10,.0f}/s"
                f"  errors {sum(measured.errors.values())}   "
            )
            sys.stderr.flush()

    reporter = asyncio.create_task(report()) if progress else None
    started = time.monotonic()
    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    measured.elapsed_s = time.monotonic() - started
    if reporter is not None:
        reporter.cancel()
        sys.stderr.write("\n")
    return measured
