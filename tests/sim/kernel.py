"""The simulation's kernel: a fake clock and a scheduler that runs one task at a time.

Each task (a client of an API process, a consumer, a cache-sync leader) is a
thread, but only the one holding the baton runs: a task gives the baton back at
every simulated wait (``sleep``, an I/O reply, a lock), and the scheduler hands
it to whichever task or callback is due next on the fake clock. So the real
ledgerd code a task calls (``AnswerWriteBack``, ``CacheFence``, ``CacheUpdater``)
is suspended in the middle of its I/O exactly where a real process could be, yet
the run is a pure function of the seed: ties on the clock are broken by the
order things were scheduled in, never by the OS.

A task is stopped (end of run) or killed (its process is SIGKILLed) by an
exception raised at its next wait; both derive from BaseException so that no
``except Exception`` in the code under test can swallow them.
"""

from __future__ import annotations

import heapq
import threading
import traceback
from collections.abc import Callable
from typing import Any


class Stop(BaseException):
    """The run is over: unwind."""


class Killed(BaseException):
    """The task's process was killed: unwind, losing every in-memory state."""


class Group:
    """The tasks of one process: paused together (a GC pause, SIGSTOP)."""

    paused_until = 0.0


class Task:
    """A simulated thread of control; runs only while it holds its baton."""

    def __init__(
        self, sim: Sim, name: str, body: Callable[[], None], group: Group | None = None
    ) -> None:
        self.sim = sim
        self.group = group
        self.name = name
        self._body = body
        self.baton = threading.Lock()
        self.baton.acquire()
        self.done = False
        self.interrupt: BaseException | None = None
        self.wait_id = 0  # wakes scheduled for an older wait are stale
        self.thread = threading.Thread(target=self._main, name=f"sim:{name}", daemon=True)

    def _main(self) -> None:
        self.baton.acquire()
        self.sim.current = self
        try:
            self._check_interrupt()
            self._body()
        except (Stop, Killed):
            pass
        except BaseException:  # any other escape is a failure of the run
            self.sim.crash = f"task {self.name} crashed:\n{traceback.format_exc()}"
        finally:
            self.done = True
            sim = self.sim
            sim._switch_to(sim._next())

    def _check_interrupt(self) -> None:
        if self.interrupt is not None:
            exc, self.interrupt = self.interrupt, None
            raise exc


class Sim:
    """The fake clock (seconds) and the run queue."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Any, int]] = []
        self._seq = 0
        self.current: Task | None = None
        self.main_baton = threading.Lock()
        self.main_baton.acquire()
        self.tasks: list[Task] = []
        self.crash: str | None = None
        self._until = 0.0
        self._stopping = False
        self._in_callback = False

    # -- scheduling -------------------------------------------------------------
    def _push(self, at: float, item: object, wait_id: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(at, self.now), self._seq, item, wait_id))

    def call_at(self, at: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` (which must not wait) on the scheduler at ``at``."""
        self._push(at, callback)

    def spawn(
        self,
        name: str,
        body: Callable[[], None],
        delay_s: float = 0.0,
        group: Group | None = None,
    ) -> Task:
        task = Task(self, name, body, group)
        self.tasks.append(task)
        task.thread.start()
        self._push(self.now + delay_s, task, task.wait_id)
        return task

    def wake(self, task: Task, at: float | None = None) -> None:
        """End ``task``'s current wait at ``at`` (now by default)."""
        if not task.done:
            self._push(self.now if at is None else at, task, task.wait_id)

    def interrupt(self, task: Task, exc: BaseException) -> None:
        """Raise ``exc`` in ``task`` at once (at its current wait)."""
        if task.done:
            return
        task.interrupt = exc
        task.wait_id += 1  # whatever it waited for no longer wakes it
        self._push(self.now, task, task.wait_id)

    def run(self, until: float) -> None:
        """Run everything due before ``until``; then stop every task."""
        self._run_until(until)
        for task in self.tasks:
            if not task.done:
                self.interrupt(task, Stop())
        self._queue = [entry for entry in self._queue if isinstance(entry[2], Task)]
        heapq.heapify(self._queue)
        self._stopping = True
        self._run_until(float("inf"))
        for task in self.tasks:
            task.thread.join()

    def _run_until(self, until: float) -> None:
        self._until = until
        first = self._next()
        if first is not None:
            self._switch_to(first)
            self.main_baton.acquire()  # given back once nothing is due before ``until``

    def _next(self) -> Task | None:
        """Run due callbacks; the next task to run, or None when nothing is due."""
        queue = self._queue
        while queue and (self._stopping or self.crash is None):
            at, _, item, wait_id = queue[0]
            if at >= self._until:
                return None
            heapq.heappop(queue)
            self.now = at
            if isinstance(item, Task):
                if item.done or wait_id != item.wait_id:
                    continue
                if item.group is not None and item.group.paused_until > at:
                    self._push(item.group.paused_until, item, wait_id)
                    continue
                item.wait_id += 1
                return item
            self._in_callback = True
            try:
                item()
            except BaseException:  # a failure of the run, not of the task scheduling
                self.crash = f"callback crashed:\n{traceback.format_exc()}"
            finally:
                self._in_callback = False
        return None

    def _switch_to(self, task: Task | None) -> None:
        """Hand the baton to ``task`` (to the main thread when None)."""
        self.current = task
        if task is None:
            self.main_baton.release()
        else:
            task.baton.release()

    # -- waiting (called from a task) ---------------------------------------------
    def _block(self) -> None:
        task = self.current
        assert task is not None, "only a task can wait"
        # A callback runs on the thread of the task that was scheduling: its wait would
        # strand that task instead of failing.
        assert not self._in_callback, "a call_at callback waited"
        following = self._next()
        if following is not task:  # else it runs on at once, without a switch
            self._switch_to(following)
            task.baton.acquire()
        task._check_interrupt()

    def sleep(self, delay_s: float) -> None:
        task = self.current
        assert task is not None
        self._push(self.now + delay_s, task, task.wait_id)
        self._block()

    def wait_event(self, event: Event, timeout_s: float) -> bool:
        """Wait for ``event`` at most ``timeout_s``; whether it was set."""
        if event.is_set:
            return True
        task = self.current
        assert task is not None
        event.waiters.append((task, task.wait_id))
        self._push(self.now + timeout_s, task, task.wait_id)
        self._block()
        return event.is_set

    def task(self) -> Task:
        assert self.current is not None
        return self.current


class Event:
    """Set once; wakes its waiters (scheduler or task side)."""

    def __init__(self, sim: Sim) -> None:
        self._sim = sim
        self.is_set = False
        self.waiters: list[tuple[Task, int]] = []

    def set(self) -> None:
        self.is_set = True
        for task, wait_id in self.waiters:
            if task.wait_id == wait_id:
                self._sim._push(self._sim.now, task, wait_id)
        self.waiters.clear()


class SimLock:
    """A mutex whose waiters wait on the fake clock (a threading.Lock would deadlock the run,
    since its holder may be suspended in I/O while another task asks for it)."""

    def __init__(self, sim: Sim) -> None:
        self._sim = sim
        self._holder: Task | None = None
        self._waiters: list[tuple[Task, int]] = []

    def acquire(self) -> bool:
        sim = self._sim
        task = sim.task()
        while self._holder is not None:
            self._waiters.append((task, task.wait_id))
            sim._block()
        self._holder = task
        return True

    def release(self) -> None:
        self._holder = None
        waiters, self._waiters = self._waiters, []
        for task, wait_id in waiters:
            if task.wait_id == wait_id:
                self._sim._push(self._sim.now, task, wait_id)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
