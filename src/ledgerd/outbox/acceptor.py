"""Durable acceptance with group commit.

Callers queue their requests and wait; one flusher takes everything queued,
commits it in a single store transaction, then answers every caller. While a
commit runs, new requests pile up for the next one, so under load many
requests share one fsync, and nobody is answered before their row is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from ledgerd import metrics
from ledgerd.domain.model import ChangeRequest, StoredRequest
from ledgerd.errors import LedgerError, Overloaded, StoreUnavailable, TransientStoreError
from ledgerd.outbox.planning import Acceptance, GroupPlan, plan_acceptance
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.store.base import Store
from ledgerd.support import failpoints
from ledgerd.support.threadnames import name_os_thread

log = structlog.get_logger(__name__)

# Called with the requests just committed as new, their commit time in Unix ms and their
# publish group (the local relay's hand-off, which publishes them at once).
OnCommitted = Callable[[Sequence[ChangeRequest], int, str], None]
# Called with a publish group no later commit will add to (with ``on_committed`` keeping
# the group open until then: ``Relay.accepted`` and ``Relay.close_group``).
OnGroupClosed = Callable[[str], None]

_RACE_RETRIES = 3
# Under concurrent load, commits begin at most this often (see ``Acceptor._gather``).
# 20 ms (was 5, which never engaged: a commit took longer) halves the commits under
# change-single (64 callers, ~1,300 a second): MariaDB 145-217 -> 107-119 µs a change, the
# whole pipeline 986-1,319 -> 908-980, p50 latency 48-53 -> 39-46 ms, two runs each of 1
# and 2 workers (issue 22). A lone caller still commits at once; a caller that arrives
# while others are committed waits at most this much more.
COMMIT_INTERVAL_S = 0.020


@dataclass(slots=True)
class _Waiting:
    requests: Sequence[ChangeRequest]
    answer: asyncio.Future[GroupPlan] = field(default_factory=asyncio.Future)


class Acceptor:
    """Accepts change requests into the outbox, many per transaction.

    Its flusher is ``run(lifeline)``, a coroutine loop for the process's supervisor.
    """

    def __init__(
        self,
        store: Store,
        *,
        on_committed: OnCommitted | None = None,
        on_group_closed: OnGroupClosed | None = None,
        on_group_abandoned: OnGroupClosed | None = None,
        batch_max_rows: int = 10_000,
        queue_max_changes: int = 200_000,
        group_span_s: float = 0.5,
        commit_interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        self._store = store
        self._on_committed = on_committed
        self._on_group_closed = on_group_closed
        self._on_group_abandoned = on_group_abandoned
        # With on_group_closed, one publish group spans the commits of up to group_span_s:
        # its publish_groups row is written once and deleted once, not per commit.
        self._group_span_s = group_span_s
        self._group_id: str | None = None  # the open group, once its row is committed
        self._group_opened_at = 0.0
        self._close_timer: asyncio.TimerHandle | None = None
        self._batch_max_rows = batch_max_rows
        self._commit_interval_s = commit_interval_s
        self._last_commit_at = -commit_interval_s  # loop time the last commit began
        self._last_commit_callers = 0
        self._queue_max_changes = queue_max_changes
        self._queue: deque[_Waiting] = deque()
        self._queued_changes = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._lifeline: Lifeline | None = None  # the running flusher's (``run``)
        # One thread: commits are serial anyway, and the next batch gathers meanwhile.
        self._commits = _CommitThread(self._commit)
        # Publish group ids: unique per process start, then counted.
        self._group_prefix = secrets.token_hex(8)
        self._group_numbers = itertools.count(1)

    def has_work(self) -> bool:
        return bool(self._queue)

    def begin_stop(self) -> None:
        """Refuse new requests and wake the flusher, which commits what is queued and returns."""
        self._stopping = True
        self._wake.set()

    def close(self) -> None:
        """Release the commit thread (after the flusher returned); idempotent."""
        self._commits.close()

    async def accept(self, requests: Sequence[ChangeRequest]) -> Sequence[Acceptance]:
        """Commit the requests (all or nothing) and answer each in order.

        A caller that stops waiting (cancelled, deadline) changes nothing for the
        others: its requests are committed with the group they were taken in, or
        dropped if it left before that.

        Raises:
            RequestConflict: a request_id exists with different fields; nothing was stored.
            Overloaded: too many requests are waiting for a commit.
            StoreUnavailable: the store could not commit them.
        """
        if self._stopping:
            raise StoreUnavailable("server is shutting down")
        if self._queued_changes + len(requests) > self._queue_max_changes and self._queue:
            raise Overloaded("too many changes waiting for a commit")
        waiting = _Waiting(requests)
        if not self._queue and self._lifeline is not None:
            # Work for an idle flusher: its silence counts from now. An API nobody called for
            # longer than stall_after_s was otherwise judged stalled by the first health check
            # after the quiet spell, before its first commit returned, and the process exited.
            self._lifeline.beat()
        self._queue.append(waiting)
        self._queued_changes += len(requests)
        self._wake.set()
        plan = await waiting.answer
        if plan.conflict is not None:
            raise plan.conflict
        return plan.acceptances

    async def run(self, lifeline: Lifeline) -> None:
        """The flusher: commit whatever is queued, group by group, until asked to stop."""
        loop = asyncio.get_running_loop()
        self._lifeline = lifeline
        while True:
            lifeline.beat()
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                failpoints.hit("acceptor.loop")
                await self._gather(loop)
                batch = self._take_batch()
                if not batch:
                    continue
                self._last_commit_at, self._last_commit_callers = loop.time(), len(batch)
                try:
                    plans = await self._commits.run(loop, batch)
                except LedgerError as exc:
                    _answer_all(batch, exc)
                    continue
                except Exception as exc:
                    # A bug: its callers learn the commit did not happen as planned (they may
                    # retry: the request_id makes that safe), then the supervisor restarts us.
                    _answer_all(batch, StoreUnavailable(f"acceptance failed: {exc}"))
                    raise
                for waiting, plan in zip(batch, plans, strict=True):
                    if not waiting.answer.done():  # its caller may have given up
                        waiting.answer.set_result(plan)
                lifeline.beat()
            if self._stopping or lifeline.stopping:
                self._close_group()
                return
            self._close_group_if_due(loop)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Under concurrent load, let the next commit begin no sooner than commit_interval_s
        after the last one began, so that it takes the callers arriving meanwhile.

        Each commit costs the same however few rows it holds (MariaDB's statements and log
        write, this process's thread hand-offs, the relay's round): with single calls
        arriving one at a time, committing each at once made commits of one or two rows.
        Only when the last commit answered several callers: a lone caller (a sequential
        client, one ChangeBalances batch) is committed at once, as it was.
        """
        if self._last_commit_callers < 2 or self._stopping:
            return
        left_s = self._last_commit_at + self._commit_interval_s - loop.time()
        if left_s > 0 and self._queued_changes < self._batch_max_rows:
            await asyncio.sleep(left_s)

    def _take_batch(self) -> list[_Waiting]:
        """The next group, up to batch_max_rows; callers that already gave up are dropped."""
        batch: list[_Waiting] = []
        rows = 0
        while self._queue and (
            not batch or rows + len(self._queue[0].requests) <= self._batch_max_rows
        ):
            waiting = self._queue.popleft()
            self._queued_changes -= len(waiting.requests)
            if waiting.answer.done():
                continue
            batch.append(waiting)
            rows += len(waiting.requests)
        return batch

    def _commit(self, batch: Sequence[_Waiting]) -> list[GroupPlan]:
        """Runs on the acceptor thread: one transaction for the whole batch."""
        groups = [waiting.requests for waiting in batch]
        request_ids = {request.request_id for group in groups for request in group}
        decided: list[GroupPlan] = []
        inserted: list[ChangeRequest] = []

        def choose_new(stored: Mapping[str, StoredRequest]) -> Sequence[ChangeRequest]:
            nonlocal decided, inserted
            inserted, decided = plan_acceptance(groups, stored)
            return inserted

        failpoints.hit("acceptor.before_commit", rows=len(request_ids))
        if (
            self._group_id is not None
            and time.monotonic() - self._group_opened_at >= self._group_span_s
        ):
            self._close_group()
        group_id = self._group_id or f"{self._group_prefix}-{next(self._group_numbers)}"
        try:
            for attempt in range(_RACE_RETRIES):
                now_ms = int(time.time() * 1000)
                try:
                    self._store.accept_requests(
                        request_ids,
                        choose_new,
                        now_ms,
                        group_id,
                        new_group=group_id != self._group_id,
                    )
                    break
                except TransientStoreError:
                    # Another process inserted one of these ids after our read: read again.
                    if attempt == _RACE_RETRIES - 1:
                        raise
        except Exception:
            if group_id == self._group_id:
                self._abandon_group()
            raise
        metrics.ACCEPT_COMMIT_ROWS.observe(len(inserted))
        metrics.ACCEPTED_CHANGES.inc(len(inserted))
        if inserted and self._on_committed is not None:
            self._on_committed(inserted, now_ms, group_id)
        if inserted and self._on_group_closed is not None and group_id != self._group_id:
            # Its row is committed (with these rows): later commits add to it.
            self._group_id, self._group_opened_at = group_id, time.monotonic()
        return decided

    def _close_group_if_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """Between commits: close the open group once its span is over, or be woken then
        (an idle acceptor's last group must close too, for the relay to delete it)."""
        if self._group_id is None:
            return
        left_s = self._group_span_s - (time.monotonic() - self._group_opened_at)
        if left_s <= 0:
            self._close_group()
        elif self._close_timer is None:
            self._close_timer = loop.call_later(left_s, self._wake_to_close)

    def _wake_to_close(self) -> None:
        self._close_timer = None
        self._wake.set()

    def _abandon_group(self) -> None:
        """A commit into the open group failed, perhaps after its rows were committed (a
        connection lost at COMMIT): nobody hands those rows to the relay, so the group's row
        must stay for the sweep, which publishes what it finds in a group that still exists.
        The relay forgets the group without deleting it; the next commit opens a new one."""
        if self._group_id is not None and self._on_group_abandoned is not None:
            self._on_group_abandoned(self._group_id)
        self._group_id = None

    def _close_group(self) -> None:
        """No later commit adds to the open group (called between commits only)."""
        if self._group_id is not None and self._on_group_closed is not None:
            self._on_group_closed(self._group_id)
        self._group_id = None


# A commit for the thread: the loop to answer on, its future and the batch; None stops it.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[list[GroupPlan]]", Sequence[_Waiting]]


class _CommitThread:
    """The acceptor's commit thread: runs ``commit`` on each batch it is given and hands the
    plans (or the exception) back to the asking loop with one ``call_soon_threadsafe``.

    ``run_in_executor`` costs about twice the CPU per commit (a concurrent Future with its
    Condition, the pool's work queue and ``wrap_future``'s callbacks on both sides), and with
    single calls a commit holds only a few rows.
    """

    def __init__(self, commit: Callable[[Sequence[_Waiting]], list[GroupPlan]]) -> None:
        self._commit = commit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(
        self, loop: asyncio.AbstractEventLoop, batch: Sequence[_Waiting]
    ) -> list[GroupPlan]:
        """The batch's plans, committed on the thread (started on first use)."""
        if self._thread is None:
            # A daemon: close() joins it; a process that never closed its acceptor must
            # still be able to exit.
            self._thread = threading.Thread(target=self._main, name="acceptor", daemon=True)
            self._thread.start()
        done: asyncio.Future[list[GroupPlan]] = loop.create_future()
        self._jobs.put((loop, done, batch))
        return await done

    def close(self) -> None:
        """Stop the thread once its current commit is done; idempotent."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _main(self) -> None:
        name_os_thread()
        while (job := self._jobs.get()) is not None:
            loop, done, batch = job
            try:
                plans, error = self._commit(batch), None
            except BaseException as exc:  # the flusher decides what an error means
                plans, error = [], exc
            # A closed loop (RuntimeError) has nobody waiting for this commit any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, done, plans, error)


def _settle(
    done: asyncio.Future[list[GroupPlan]], plans: list[GroupPlan], error: BaseException | None
) -> None:
    if done.done():  # the flusher was cancelled meanwhile
        return
    if error is None:
        done.set_result(plans)
    else:
        done.set_exception(error)


def _answer_all(batch: Sequence[_Waiting], error: Exception) -> None:
    for waiting in batch:
        if not waiting.answer.done():
            waiting.answer.set_exception(error)
