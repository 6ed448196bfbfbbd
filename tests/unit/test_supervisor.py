"""The supervisor: restarts what crashes, reports what stays down or stalls, stops in order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from ledgerd.runtime.supervisor import Child, Lifeline, Policy, Supervisor, sleep_unless_stopping

FAST = Policy(max_restarts=3, restart_window_s=60, backoff_base_s=0.001, backoff_max_s=0.01)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.001)


def test_a_crashed_thread_loop_is_restarted() -> None:
    """A loop that raises once runs again, and health names the last error."""
    runs: list[int] = []

    def loop(lifeline: Lifeline) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise KeyError("boom")
        while not lifeline.wait(0.01):
            lifeline.beat()

    supervisor = Supervisor(FAST)
    supervisor.add_thread("worker", loop)
    supervisor.start()
    wait_until(lambda: len(runs) == 2)
    health = supervisor.health()["worker"]
    asyncio.run(supervisor.stop_all())
    assert health.ok
    assert "KeyError" in health.detail


def test_a_loop_that_keeps_failing_is_down_and_reported_once() -> None:
    """Past max_restarts failures in the window, health says down and on_down hears the name."""
    down: list[str] = []
    supervisor = Supervisor(FAST, on_down=down.append)

    def loop(_: Lifeline) -> None:
        raise RuntimeError("always")

    supervisor.add_thread("doomed", loop)
    supervisor.start()
    wait_until(lambda: down == ["doomed"])
    health = supervisor.health()["doomed"]
    asyncio.run(supervisor.stop_all())
    assert down == ["doomed"]
    assert not health.ok
    assert health.detail.startswith("down: failed")


def test_a_loop_that_returns_unasked_counts_as_a_failure() -> None:
    """Returning while not stopping is a crash: it is restarted."""
    runs: list[int] = []

    def loop(lifeline: Lifeline) -> None:
        runs.append(1)
        if len(runs) > 1:
            lifeline.wait(10)

    supervisor = Supervisor(FAST)
    supervisor.add_thread("quitter", loop)
    supervisor.start()
    wait_until(lambda: len(runs) == 2)
    detail = supervisor.health()["quitter"].detail
    asyncio.run(supervisor.stop_all())
    assert "returned without being asked to stop" in detail


def test_silence_with_work_is_a_stall_and_without_work_is_not() -> None:
    """No heartbeat past stall_after_s is a stall only while the component has work."""
    clock = FakeClock()
    busy = threading.Event()
    supervisor = Supervisor(Policy(stall_after_s=30), clock=clock)
    supervisor.add_thread("quiet", lambda life: life.wait(60) and None, has_work=busy.is_set)
    supervisor.start()
    clock.now += 31
    idle = supervisor.health()["quiet"]
    busy.set()
    stalled = supervisor.health()["quiet"]
    asyncio.run(supervisor.stop_all())
    assert idle.ok
    assert not stalled.ok
    assert stalled.detail.startswith("stalled: no progress for 31 s")


def test_failures_outside_the_window_are_forgotten() -> None:
    """A component down after a burst of failures is ok again once they leave the window."""
    clock = FakeClock()
    failures = 0

    def loop(lifeline: Lifeline) -> None:
        nonlocal failures
        if failures < 4:
            failures += 1
            raise RuntimeError("burst")
        lifeline.wait(60)

    supervisor = Supervisor(FAST, clock=clock)
    supervisor.add_thread("bursty", loop, has_work=lambda: False)
    supervisor.start()
    wait_until(lambda: failures == 4)
    wait_until(lambda: not supervisor.health()["bursty"].ok)
    clock.now += 61
    later = supervisor.health()["bursty"]
    asyncio.run(supervisor.stop_all())
    assert later.ok


def test_a_crashed_task_loop_is_restarted() -> None:
    """Coroutine components are supervised the same way."""
    runs: list[int] = []

    async def loop(lifeline: Lifeline) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise ValueError("async boom")
        while not lifeline.stopping:
            lifeline.beat()
            await asyncio.sleep(0.005)

    async def main() -> str:
        supervisor = Supervisor(FAST)
        supervisor.add_task("task", loop)
        supervisor.start()
        while len(runs) < 2:
            await asyncio.sleep(0.005)
        detail = supervisor.health()["task"].detail
        await supervisor.stop_all()
        return detail

    assert "ValueError" in asyncio.run(main())


def test_stop_all_stops_the_last_registered_first() -> None:
    """Components stop in reverse registration order, each loop having returned."""
    stopped: list[str] = []

    def loop_named(name: str) -> Callable[[Lifeline], None]:
        def loop(lifeline: Lifeline) -> None:
            while not lifeline.wait(0.01):
                pass
            stopped.append(name)

        return loop

    supervisor = Supervisor(FAST)
    for name in ("first", "second", "third"):
        supervisor.add_thread(name, loop_named(name))
    supervisor.start()
    asyncio.run(supervisor.stop_all())
    assert stopped == ["third", "second", "first"]


def _recorded_child(name: str, events: list[str]) -> Child:
    """A thread child whose start, stop, loop end and close each append ``name:what``."""

    async def start() -> None:
        events.append(f"{name}:start")

    async def stop() -> None:
        events.append(f"{name}:stop")

    def loop(lifeline: Lifeline) -> None:
        events.append(f"{name}:run")
        while not lifeline.wait(0.01):
            lifeline.beat()
        events.append(f"{name}:returned")

    def close() -> None:
        events.append(f"{name}:close")

    return Child(name, thread=loop, start=start, stop=stop, close=close)


def test_start_all_runs_each_start_hook_before_the_children_after_it() -> None:
    """start_all walks the children in registration order, each start hook before its loop
    and before the next child's hook."""
    events: list[str] = []

    async def main() -> None:
        supervisor = Supervisor(FAST)
        supervisor.add(_recorded_child("store-user", events))
        supervisor.add(_recorded_child("api", events))
        await supervisor.start_all()
        await supervisor.stop_all()

    asyncio.run(main())
    started = [e for e in events if e.endswith(":start")]
    assert started == ["store-user:start", "api:start"]
    assert events.index("store-user:start") < events.index("api:start")
    assert events.index("store-user:start") < events.index("store-user:run")


def test_stop_all_drains_stops_and_closes_each_child_last_registered_first() -> None:
    """Each child is stopped whole (stop hook, loop returned, close) before the one
    registered before it starts stopping."""
    events: list[str] = []

    async def main() -> None:
        supervisor = Supervisor(FAST)
        for name in ("leader", "relay", "api"):
            supervisor.add(_recorded_child(name, events))
        await supervisor.start_all()
        await supervisor.stop_all()

    asyncio.run(main())
    ending = [e for e in events if not e.endswith((":start", ":run"))]
    assert ending == [
        "api:stop",
        "api:returned",
        "api:close",
        "relay:stop",
        "relay:returned",
        "relay:close",
        "leader:stop",
        "leader:returned",
        "leader:close",
    ]


def test_stopping_twice_runs_the_stop_and_close_hooks_once() -> None:
    """stop() is idempotent: a second stop of a child (or stop_all after it) runs no hook."""
    events: list[str] = []

    async def main() -> None:
        supervisor = Supervisor(FAST)
        supervisor.add(_recorded_child("once", events))
        await supervisor.start_all()
        await supervisor.stop("once")
        await supervisor.stop("once")
        await supervisor.stop_all()

    asyncio.run(main())
    assert events.count("once:stop") == 1
    assert events.count("once:close") == 1


def test_a_stop_group_stops_its_children_at_the_same_time() -> None:
    """Adjacent children of one stop group drain together: each one's stop hook runs while
    the other's is still waiting."""
    met: list[str] = []

    def child(name: str, both_stopping: asyncio.Barrier) -> Child:
        async def stop() -> None:
            # Waits for the other child's stop hook: passes only if both run at once.
            await asyncio.wait_for(both_stopping.wait(), timeout=5)
            met.append(name)

        async def loop(lifeline: Lifeline) -> None:
            await sleep_unless_stopping(lifeline, 60)

        return Child(name, task=loop, stop=stop, stop_group="workers")

    async def main() -> None:
        supervisor = Supervisor(FAST)
        both_stopping = asyncio.Barrier(2)
        supervisor.add(child("worker-1", both_stopping))
        supervisor.add(child("worker-2", both_stopping))
        await supervisor.start_all()
        await supervisor.stop_all()

    asyncio.run(main())
    assert sorted(met) == ["worker-1", "worker-2"]


def test_a_child_gives_exactly_one_loop() -> None:
    """A child with both a thread and a task loop (or neither) is refused when declared."""

    def loop(lifeline: Lifeline) -> None:
        lifeline.wait(0)

    async def task(lifeline: Lifeline) -> None:
        await asyncio.sleep(0)

    with pytest.raises(ValueError, match="exactly one"):
        Child("neither")
    with pytest.raises(ValueError, match="exactly one"):
        Child("both", thread=loop, task=task)


def test_a_child_whose_start_failed_is_still_stopped_and_closed() -> None:
    """A start hook that raises (a port in use after another was bound) leaves start_all
    raising, and stop_all still runs that child's stop and close hooks, so half a start is
    undone; the children after it never start."""
    events: list[str] = []

    async def fail() -> None:
        events.append("api:start")
        raise OSError("address in use")

    failing = _recorded_child("api", events)
    failing = Child(
        "api", thread=failing.thread, start=fail, stop=failing.stop, close=failing.close
    )

    async def main() -> None:
        supervisor = Supervisor(FAST)
        supervisor.add(_recorded_child("relay", events))
        supervisor.add(failing)
        supervisor.add(_recorded_child("watchdog", events))
        with pytest.raises(OSError, match="address in use"):
            await supervisor.start_all()
        await supervisor.stop_all()

    asyncio.run(main())
    assert "watchdog:start" not in events
    assert "api:run" not in events
    assert events.index("api:stop") < events.index("api:close") < events.index("relay:stop")


def test_an_async_sleep_ends_at_its_delay_or_as_soon_as_stop_is_called_from_any_thread() -> None:
    """sleep_unless_stopping sleeps its delay; stop() from another thread ends it at once
    (no polling interval to wait out), and a sleep begun after stop returns straight away."""

    async def main() -> tuple[float, float, float]:
        lifeline = Lifeline("sleeper")
        started = time.monotonic()
        await sleep_unless_stopping(lifeline, 0.2)
        slept_s = time.monotonic() - started
        threading.Timer(0.1, lifeline.stop).start()
        started = time.monotonic()
        await sleep_unless_stopping(lifeline, 60)
        woken_after_s = time.monotonic() - started
        started = time.monotonic()
        await sleep_unless_stopping(lifeline, 60)
        return slept_s, woken_after_s, time.monotonic() - started

    slept_s, woken_after_s, after_stop_s = asyncio.run(main())
    assert 0.19 <= slept_s < 1.0
    assert 0.05 <= woken_after_s < 1.0
    assert after_stop_s < 0.05
