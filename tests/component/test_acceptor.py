"""The acceptor's group commit, in-process over the embedded store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.errors import StoreUnavailable
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.runtime.supervisor import Supervisor
from ledgerd.store.sqlite import SqliteStore

Scenario = Callable[[Acceptor], Awaitable[None]]


def _deposit(request_id: str, user_id: int = 7) -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, 10**18)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    made = SqliteStore(tmp_path / "store.sqlite")
    made.migrate()
    return made


def run_with_acceptor(store: SqliteStore, scenario: Scenario, **options: Any) -> None:
    """``scenario`` against a supervised Acceptor(store, **options), stopped after it."""

    async def main() -> None:
        acceptor = Acceptor(store, **options)
        supervisor = Supervisor()
        supervisor.add_task("acceptor", acceptor.run, wake=acceptor.begin_stop)
        supervisor.start()
        try:
            await scenario(acceptor)
        finally:
            await asyncio.wait_for(supervisor.stop_all(), timeout=10)
            acceptor.close()

    asyncio.run(main())


def test_callers_that_give_up_do_not_stop_later_acceptance(store: SqliteStore) -> None:
    """500 callers cancelled while waiting for the group commit; the next caller is answered."""

    async def scenario(acceptor: Acceptor) -> None:
        async def impatient(index: int) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acceptor.accept([_deposit(f"gone-{index}")]), 0.005)

        await asyncio.gather(*(impatient(i) for i in range(500)))
        answers = await asyncio.wait_for(acceptor.accept([_deposit("patient")]), timeout=10)
        assert answers[0].stored.status is ChangeStatus.PENDING

    run_with_acceptor(store, scenario)
    assert "patient" in store.get_requests(["patient"])


def test_a_cancelled_callers_retry_is_the_same_request(store: SqliteStore) -> None:
    """A caller that gave up after queuing retries with the same id: one row, same request."""

    async def scenario(acceptor: Acceptor) -> None:
        task = asyncio.create_task(acceptor.accept([_deposit("retried")]))
        await asyncio.sleep(0)  # queued, not yet committed
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        answers = await asyncio.wait_for(acceptor.accept([_deposit("retried")]), timeout=10)
        assert answers[0].stored.request == _deposit("retried")

    run_with_acceptor(store, scenario)
    assert len(store.get_requests(["retried"])) == 1


def test_commits_of_one_span_share_a_publish_group_closed_once_idle(store: SqliteStore) -> None:
    """With on_group_closed, commits within the span join one publish group (one row),
    which is closed once the acceptor has been idle for the span; the next commit opens
    another."""
    committed: list[str] = []
    closed: list[str] = []

    async def scenario(acceptor: Acceptor) -> None:
        await acceptor.accept([_deposit("one")])
        await acceptor.accept([_deposit("two")])
        assert committed[0] == committed[1] and closed == []
        deadline = asyncio.get_running_loop().time() + 10
        while not closed and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert closed == [committed[0]]
        await acceptor.accept([_deposit("three")])
        assert committed[2] != committed[0]

    run_with_acceptor(
        store,
        scenario,
        on_committed=lambda _requests, _at_ms, group: committed.append(group),
        on_group_closed=closed.append,
        group_span_s=0.3,
    )
    assert closed == [committed[0], committed[2]]  # the last one at stop
    groups = {u.group_id for u in store.find_unsent(created_before_ms=2**62, limit=10)}
    assert groups == {committed[0], committed[2]}  # one row each, nothing deleted them


class _CommitThenLoseConnection(SqliteStore):
    """Commits the second acceptance, then raises as a connection lost at COMMIT would."""

    calls = 0

    def accept_requests(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        result = super().accept_requests(*args, **kwargs)
        if self.calls == 2:
            raise StoreUnavailable("mysql 2013: Lost connection to server during query")
        return result


def test_a_failed_commit_into_an_open_group_leaves_the_group_for_the_sweep(
    tmp_path: Path,
) -> None:
    """A commit into the open publish group fails after its rows were committed: nobody
    hands those rows to the relay, so the group is abandoned (never closed, so the relay
    never deletes it) and the sweep's query still finds the row; the next commit opens a
    new group. (A MariaDB restart mid-load left such a row PENDING for ever.)"""
    store = _CommitThenLoseConnection(tmp_path / "store.sqlite")
    store.migrate()
    committed: list[str] = []
    closed: list[str] = []
    abandoned: list[str] = []

    async def scenario(acceptor: Acceptor) -> None:
        await acceptor.accept([_deposit("handed-off")])
        with pytest.raises(StoreUnavailable):
            await acceptor.accept([_deposit("orphan")])
        assert abandoned == [committed[0]] and closed == []
        await acceptor.accept([_deposit("after")])
        assert committed[1] != committed[0]

    run_with_acceptor(
        store,
        scenario,
        on_committed=lambda _requests, _at_ms, group: committed.append(group),
        on_group_closed=closed.append,
        on_group_abandoned=abandoned.append,
        group_span_s=60,
    )
    assert committed[0] not in closed
    unsent = {u.stored.request.request_id: u.group_id for u in store.find_unsent(2**62, 10)}
    assert unsent["orphan"] == committed[0]  # the group row is there: the sweep sends it


def test_under_concurrent_load_one_commit_takes_the_callers_of_the_interval(
    store: SqliteStore,
) -> None:
    """After a commit that answered several callers, the next one begins no sooner than
    commit_interval_s after it: ten callers arriving 10 ms apart within that interval share
    one commit instead of making one each."""
    rows: list[int] = []

    async def scenario(acceptor: Acceptor) -> None:
        await asyncio.gather(*(acceptor.accept([_deposit(f"wave-{i}")]) for i in range(5)))

        async def later(index: int) -> None:
            await asyncio.sleep(0.01 * index)
            await acceptor.accept([_deposit(f"trickle-{index}")])

        await asyncio.gather(*(later(i) for i in range(10)))

    run_with_acceptor(
        store,
        scenario,
        on_committed=lambda requests, _at_ms, _group: rows.append(len(requests)),
        commit_interval_s=1.0,
    )
    assert rows == [5, 10]


def test_a_lone_caller_is_committed_at_once_whatever_the_interval(store: SqliteStore) -> None:
    """A sequential caller (each commit answers one caller) never waits for the interval."""

    async def scenario(acceptor: Acceptor) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        for index in range(5):
            await acceptor.accept([_deposit(f"alone-{index}")])
        assert loop.time() - began < 5.0  # five commits, none waited the 60 s interval

    run_with_acceptor(store, scenario, commit_interval_s=60.0)
    assert len(store.get_requests([f"alone-{i}" for i in range(5)])) == 5
