"""Supervision: every long-running component of a process runs under one supervisor.

In the spirit of Erlang/OTP supervisors and structured concurrency, no loop runs
unowned. A component is a function ``run(lifeline)`` that loops until
``lifeline.stopping``, calling ``lifeline.beat()`` whenever it makes progress.
The supervisor runs it on its own thread (or as an asyncio task), and when it
raises anything, logs the stack, counts the failure and runs it again after a
backoff. A component that fails ``max_restarts`` times within
``restart_window_s``, or that has work but has not beaten for
``stall_after_s``, is *down*: health names it, and the supervisor calls
``on_down`` (a split-role process exits non-zero there, so that its
orchestrator restarts it).

A ``run`` that returns while not asked to stop is a failure too: loops end
only when told to.

The supervisor owns a component's whole life, as an OTP child spec does: a ``Child``
declares its loop and the hooks around it (``start`` before the loop runs, ``stop`` to
drain while it still runs, ``close`` to release what it holds once it has returned).
``start_all`` walks the children in registration order, ``stop_all`` the other way, so
what is registered first (what others use) is stopped and closed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ledgerd import metrics
from ledgerd.support.threadnames import name_os_thread

log = structlog.get_logger(__name__)

Clock = Callable[[], float]


class Lifeline:
    """What a supervised loop holds: the stop signal, its heartbeat, an interruptible wait."""

    def __init__(self, name: str, clock: Clock = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._stop = threading.Event()
        self.last_beat = clock()
        # Coroutines in sleep(), each woken on its own event loop by stop()
        # (which any thread may call), so that an idle task loop sleeps instead of polling.
        self._sleepers: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._sleepers_lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def beat(self) -> None:
        """Record progress (a loop round done); health watches its age."""
        self.last_beat = self._clock()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, returning early (True) when asked to stop."""
        return self._stop.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        with self._sleepers_lock:
            sleepers = list(self._sleepers.items())
        for woken, loop in sleepers:
            # RuntimeError: its loop is closed, and nobody is left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, woken)

    async def sleep(self, delay_s: float) -> None:
        """The asyncio form of ``wait``: sleep up to ``delay_s``, returning early once
        asked to stop. One timer and one wake-up, not a poll of the stop flag (an idle
        process's task loops each used to wake 20 times a second to look at it)."""
        if self._stop.is_set() or delay_s <= 0:
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(delay_s, _settle, woken)
        with self._sleepers_lock:
            self._sleepers[woken] = loop
        if self._stop.is_set():  # stop() ran before the registration and did not see it
            _settle(woken)
        try:
            await woken
        finally:
            timer.cancel()
            with self._sleepers_lock:
                del self._sleepers[woken]


def _settle(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


class _Returned(RuntimeError):
    """A supervised loop returned although nobody asked it to stop."""

    def __init__(self) -> None:
        super().__init__("loop returned without being asked to stop")


ThreadRun = Callable[[Lifeline], None]
TaskRun = Callable[[Lifeline], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Child:
    """A component as its supervisor runs it, declared once: its loop and its life around it.

    Exactly one of ``thread`` (a blocking loop, on a thread of its own) and ``task`` (a
    coroutine loop, on the event loop) is set. ``has_work`` tells whether silence means a
    stall; ``wake`` interrupts a loop that waits on something other than its lifeline.
    ``start`` runs once before the loop is first started (bind a port, try for a lock);
    ``stop`` runs first when the component is stopped, while its loop still runs (stop
    taking work, finish what is in hand); ``close`` runs once the loop has returned
    (release threads, connections; it may return an awaitable, which is awaited).
    Adjacent children with the same ``stop_group`` are stopped at the same time.
    """

    name: str
    thread: ThreadRun | None = None
    task: TaskRun | None = None
    has_work: Callable[[], bool] = _always
    wake: Callable[[], None] | None = None
    start: Hook | None = None
    stop: Hook | None = None
    close: Callable[[], object] | None = None
    stop_group: str | None = None

    def __post_init__(self) -> None:
        if (self.thread is None) == (self.task is None):
            raise ValueError(f"child {self.name!r}: give exactly one of thread and task")


@dataclass(frozen=True, slots=True)
class Policy:
    """When a failing or silent component counts as down, and how restarts back off."""

    max_restarts: int = 5
    restart_window_s: float = 60.0
    backoff_base_s: float = 0.1
    backoff_max_s: float = 10.0
    stall_after_s: float = 60.0

    def backoff_s(self, recent_failures: int) -> float:
        exponent = max(recent_failures - 1, 0)
        return float(min(self.backoff_max_s, self.backoff_base_s * 2**exponent))


@dataclass
class _Component:
    name: str
    lifeline: Lifeline
    has_work: Callable[[], bool]
    wake: Callable[[], None] | None = None
    thread_run: ThreadRun | None = None
    task_run: TaskRun | None = None
    start_hook: Hook | None = None
    stop_hook: Hook | None = None
    close_hook: Callable[[], object] | None = None
    stop_group: str | None = None
    started: bool = False
    stopped: bool = False
    thread: threading.Thread | None = None
    task: asyncio.Task[None] | None = None
    failures: deque[float] = field(default_factory=deque)
    restarts: int = 0
    last_error: str = ""
    gave_up: bool = False


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One component as health reports it: ``ok`` false means the process cannot do its work."""

    ok: bool
    detail: str


class Supervisor:
    """Owns a process's components: starts, restarts, watches and stops them."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        on_down: Callable[[str], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.policy = policy or Policy()
        self._on_down = on_down
        self._clock = clock
        self._components: dict[str, _Component] = {}
        self._down_reported: set[str] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- registration ---------------------------------------------------------
    def add(self, child: Child) -> Lifeline:
        """Supervise ``child`` from its start to its close (started by ``start_all``)."""
        lifeline = Lifeline(child.name, self._clock)
        return self._add(
            _Component(
                child.name,
                lifeline,
                child.has_work,
                child.wake,
                thread_run=child.thread,
                task_run=child.task,
                start_hook=child.start,
                stop_hook=child.stop,
                close_hook=child.close,
                stop_group=child.stop_group,
            )
        )

    def add_thread(
        self,
        name: str,
        run: ThreadRun,
        *,
        has_work: Callable[[], bool] = lambda: True,
        wake: Callable[[], None] | None = None,
    ) -> Lifeline:
        """Supervise a blocking loop on a thread of its own (started by ``start``).

        ``has_work`` tells whether silence means a stall; ``wake`` interrupts a loop
        that waits on something other than its lifeline, so that it sees ``stopping``.
        """
        lifeline = Lifeline(name, self._clock)
        return self._add(_Component(name, lifeline, has_work, wake, thread_run=run))

    def add_task(
        self,
        name: str,
        run: TaskRun,
        *,
        has_work: Callable[[], bool] = lambda: True,
        wake: Callable[[], None] | None = None,
    ) -> Lifeline:
        """Supervise a coroutine loop on the running event loop (started by ``start``)."""
        lifeline = Lifeline(name, self._clock)
        return self._add(_Component(name, lifeline, has_work, wake, task_run=run))

    def _add(self, component: _Component) -> Lifeline:
        if component.name in self._components:
            raise ValueError(f"component {component.name!r} is supervised already")
        self._components[component.name] = component
        metrics.COMPONENT_UP.labels(component=component.name).set(0)
        # A zero series from the start, so rate() and alerts see the first failure.
        metrics.COMPONENT_FAILURES.labels(component=component.name)
        return component.lifeline

    @property
    def names(self) -> list[str]:
        return list(self._components)

    # -- lifecycle ------------------------------------------------------------
    async def start_all(self) -> None:
        """Start every component not yet started, in registration order: its ``start``
        hook, then its loop.

        Raises:
            Exception: whatever a ``start`` hook raised (the components before it run;
                ``stop_all`` still runs the failed one's ``stop`` hook, to undo half a start).
        """
        for component in list(self._components.values()):
            if component.started or component.stopped:
                continue
            component.started = True
            if component.start_hook is not None:
                await component.start_hook()
            self._launch(component)

    def start(self) -> None:
        """Start the loop of every component not yet running, in registration order.

        Task components need a running event loop (call from a coroutine).

        Raises:
            RuntimeError: a component has a ``start`` hook (use ``start_all``).
        """
        for component in self._components.values():
            if component.start_hook is not None and not component.started:
                raise RuntimeError(f"component {component.name!r} has a start hook: start_all")
            self._launch(component)

    def _launch(self, component: _Component) -> None:
        component.started = True
        if component.thread_run is not None and component.thread is None:
            component.thread = threading.Thread(
                target=self._thread_main, args=(component,), name=component.name, daemon=True
            )
            component.thread.start()
        elif component.task_run is not None and component.task is None:
            self._loop = asyncio.get_running_loop()
            component.task = self._loop.create_task(self._task_main(component), name=component.name)
        metrics.COMPONENT_UP.labels(component=component.name).set(1)

    async def stop(self, name: str) -> None:
        """Stop one component: its ``stop`` hook, then its loop (asked, and waited for until
        it returned), then its ``close`` hook; idempotent."""
        component = self._components[name]
        first = not component.stopped
        component.stopped = True
        if first and component.started and component.stop_hook is not None:
            await component.stop_hook()
        component.lifeline.stop()
        if component.wake is not None:
            component.wake()
        if component.thread is not None:
            await asyncio.to_thread(component.thread.join)
            component.thread = None
        if component.task is not None:
            # The loop sees `stopping` at its next wake-up; its own code decides how to drain.
            await asyncio.gather(component.task, return_exceptions=True)
            component.task = None
        metrics.COMPONENT_UP.labels(component=name).set(0)
        if first and component.close_hook is not None:
            closing = component.close_hook()
            if inspect.isawaitable(closing):
                await closing

    async def stop_all(self) -> None:
        """Stop and close every component, the last registered first (dependents before
        what they use); adjacent components of one ``stop_group`` stop together."""
        pending = list(reversed(self._components.values()))
        while pending:
            group = pending[0].stop_group
            together = 1
            while (
                group is not None
                and together < len(pending)
                and pending[together].stop_group == group
            ):
                together += 1
            await asyncio.gather(*(self.stop(c.name) for c in pending[:together]))
            del pending[:together]

    # -- running --------------------------------------------------------------
    def _thread_main(self, component: _Component) -> None:
        assert component.thread_run is not None
        name_os_thread()  # the thread is named after its component
        lifeline = component.lifeline
        while not lifeline.stopping:
            try:
                component.thread_run(lifeline)
            except Exception as exc:  # anything a component raises is supervised
                delay = self._failed(component, exc)
            else:
                if lifeline.stopping:
                    return
                delay = self._failed(component, _Returned())
            lifeline.wait(delay)

    async def _task_main(self, component: _Component) -> None:
        assert component.task_run is not None
        lifeline = component.lifeline
        while not lifeline.stopping:
            try:
                await component.task_run(lifeline)
            except Exception as exc:  # anything a component raises is supervised
                delay = self._failed(component, exc)
            else:
                if lifeline.stopping:
                    return
                delay = self._failed(component, _Returned())
            await sleep_unless_stopping(lifeline, delay)

    def _failed(self, component: _Component, exc: BaseException) -> float:
        """Record a crash; returns the backoff before the next run."""
        now = self._clock()
        window = self.policy.restart_window_s
        with self._lock:
            component.failures.append(now)
            while component.failures and component.failures[0] < now - window:
                component.failures.popleft()
            component.restarts += 1
            component.last_error = f"{type(exc).__name__}: {exc}"
            recent = len(component.failures)
            component.gave_up = recent > self.policy.max_restarts
        metrics.COMPONENT_FAILURES.labels(component=component.name).inc()
        log.error(
            "component failed; restarting",
            component=component.name,
            error=component.last_error,
            failures_in_window=recent,
            stack="".join(traceback.format_exception(exc)),
        )
        if component.gave_up:
            self._report_down(component.name, f"failed {recent} times in {window:g} s")
        return self.policy.backoff_s(recent)

    # -- health ---------------------------------------------------------------
    def health(self) -> dict[str, ComponentHealth]:
        """Every component's state; also reports newly down components to ``on_down``."""
        now = self._clock()
        report: dict[str, ComponentHealth] = {}
        for name, component in self._components.items():
            report[name] = self._judge(component, now)
            if not report[name].ok:
                self._report_down(name, report[name].detail)
            else:
                with self._lock:
                    self._down_reported.discard(name)  # recovered: report it again next time
                metrics.COMPONENT_UP.labels(component=name).set(1)
        return report

    def _judge(self, component: _Component, now: float) -> ComponentHealth:
        with self._lock:
            recent = [t for t in component.failures if t >= now - self.policy.restart_window_s]
            gave_up = component.gave_up and len(recent) > self.policy.max_restarts
            component.gave_up = gave_up
        if component.lifeline.stopping:
            return ComponentHealth(True, "stopping")
        if gave_up:
            return ComponentHealth(
                False, f"down: failed {len(recent)} times, last: {component.last_error}"
            )
        silent_s = now - component.lifeline.last_beat
        if silent_s > self.policy.stall_after_s and component.has_work():
            return ComponentHealth(False, f"stalled: no progress for {silent_s:.0f} s")
        if recent:
            return ComponentHealth(
                True, f"ok, restarted {component.restarts} times, last: {component.last_error}"
            )
        return ComponentHealth(True, "ok")

    def _report_down(self, name: str, why: str) -> None:
        metrics.COMPONENT_UP.labels(component=name).set(0)
        with self._lock:
            if name in self._down_reported:
                return
            self._down_reported.add(name)
        log.error("component down", component=name, why=why)
        if self._on_down is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._on_down, name)
            else:
                self._on_down(name)


async def sleep_unless_stopping(lifeline: Lifeline, delay_s: float) -> None:
    """The asyncio form of ``lifeline.wait``: sleep, returning early once asked to stop."""
    await lifeline.sleep(delay_s)
