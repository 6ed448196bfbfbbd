"""The acceptor's group commit, in-process over the embedded store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.store.sqlite import SqliteStore
from ledgerd.support.supervisor import Supervisor

Scenario = Callable[[Acceptor], Awaitable[None]]


def _deposit(request_id: str, user_id: int = 7) -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, 10**18)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    made = SqliteStore(tmp_path / "store.sqlite")
    made.migrate()
    return made


def run_with_acceptor(store: SqliteStore, scenario: Scenario) -> None:
    async def main() -> None:
        acceptor = Acceptor(store)
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
