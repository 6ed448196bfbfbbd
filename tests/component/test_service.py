"""The service layer in-process: acceptance, outcomes, waiting and reads over embedded backends.

The consumer's cache is the rig's memory cache; the service reads a second,
empty memory cache, so every balance it finds there was written by an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from component_support import DLQ, TOPIC, Rig

from ledgerd.cache.memory import MemoryCache
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeStatus, ChangeType
from ledgerd.errors import RequestConflict, RequestNotFound
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.outcomes import OutcomeHub
from ledgerd.runtime.supervisor import Supervisor
from ledgerd.service import LedgerService

T = TypeVar("T")


def deposit(request_id: str, user_id: int = 7, amount: int = SCALE) -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, amount)


def run(
    rig: Rig, scenario: Callable[[LedgerService, Callable[[], None], MemoryCache], Awaitable[T]]
) -> T:
    """Run ``scenario(service, apply_pending, read_cache)`` with an acceptor and relay in process;
    ``apply_pending()`` relays and applies what is accepted so far (burst mode)."""
    outcomes = OutcomeHub()
    relay = rig.relay(sweep_min_age_s=0.0)
    consumer = BatchConsumer(
        rig.store,
        rig.log,
        rig.cache,
        outcomes,
        ConsumerConfig(topic=TOPIC, dlq_topic=DLQ),
        signer=rig.signer,
    )
    read_cache = MemoryCache()

    def apply_pending() -> None:
        relay.run_until_idle()
        consumer.run_until_idle()

    async def main() -> T:
        outcomes.attach(asyncio.get_running_loop())
        acceptor = Acceptor(rig.store, on_committed=relay.hand_off)
        supervisor = Supervisor()
        supervisor.add_task("acceptor", acceptor.run, wake=acceptor.begin_stop)
        supervisor.start()
        service = LedgerService(rig.store, read_cache, acceptor, outcomes, wait_max_s=10)
        try:
            return await scenario(service, apply_pending, read_cache)
        finally:
            await supervisor.stop_all()
            acceptor.close()

    try:
        return asyncio.run(main())
    finally:
        consumer.close()


def test_an_accepted_change_is_pending_then_applied_with_its_balance(rig: Rig) -> None:
    """Without wait the answer is PENDING; once applied, GetChange answers APPLIED with the
    balance after it, and writes that balance to the cache it reads."""

    async def scenario(
        service: LedgerService, apply_pending: Callable[[], None], cache: MemoryCache
    ) -> None:
        (answer,) = await service.change([deposit("a-1")], wait=False, deadline=None)
        assert answer.status is ChangeStatus.PENDING
        await asyncio.to_thread(apply_pending)
        applied = await service.get_change("a-1")
        assert applied.status is ChangeStatus.APPLIED
        assert applied.balance == Balance(7, "USD", SCALE, 0, 1)
        assert cache.get(Account(7, "USD")) == applied.balance

    run(rig, scenario)


def test_a_batch_without_wait_answers_each_new_change_pending_in_request_order(
    rig: Rig,
) -> None:
    """New changes without wait are answered PENDING, not duplicate, in the order asked
    (not the order their rows are inserted in)."""

    async def scenario(service: LedgerService, _: Callable[[], None], __: MemoryCache) -> None:
        asked = [deposit("o-3"), deposit("o-1", user_id=8), deposit("o-2")]
        answers = await service.change(asked, wait=False, deadline=None)
        assert [(a.request_id, a.status, a.duplicate) for a in answers] == [
            ("o-3", ChangeStatus.PENDING, False),
            ("o-1", ChangeStatus.PENDING, False),
            ("o-2", ChangeStatus.PENDING, False),
        ]

    run(rig, scenario)


def test_a_retry_is_a_duplicate_and_a_conflict_is_refused(rig: Rig) -> None:
    """The same request again answers duplicate=true; the same id with other fields raises
    RequestConflict and stores nothing new."""

    async def scenario(service: LedgerService, _: Callable[[], None], __: MemoryCache) -> None:
        await service.change([deposit("d-1")], wait=False, deadline=None)
        (again,) = await service.change([deposit("d-1")], wait=False, deadline=None)
        assert again.duplicate
        try:
            await service.change([deposit("d-1", amount=2 * SCALE)], wait=False, deadline=None)
        except RequestConflict:
            pass
        else:
            raise AssertionError("a conflicting retry was accepted")

    run(rig, scenario)
    assert rig.store.get_requests(["d-1"])["d-1"].request.amount == SCALE


def test_wait_is_woken_by_the_consumer_in_this_process(rig: Rig) -> None:
    """A wait=true change answers APPLIED as soon as the in-process consumer applies it."""

    async def scenario(
        service: LedgerService, apply_pending: Callable[[], None], _: MemoryCache
    ) -> tuple[ChangeStatus, float]:
        started = time.monotonic()
        waiting = asyncio.create_task(
            service.change([deposit("w-1")], wait=True, deadline=started + 30)
        )
        while rig.store.get_requests(["w-1"]) == {}:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(apply_pending)
        (answer,) = await waiting
        return answer.status, time.monotonic() - started

    status, elapsed = run(rig, scenario)
    assert status is ChangeStatus.APPLIED
    assert elapsed < 25  # woken, not answered at the deadline


def test_wait_answers_the_current_status_before_the_deadline(rig: Rig) -> None:
    """Nothing applies: a wait=true change answers PENDING shortly before the caller's deadline.

    2 s leaves the server a 200 ms margin (10% of the time left), enough for a loaded machine;
    0.5 s left 50 ms and failed under a load average of 13."""

    async def scenario(service: LedgerService, _: Callable[[], None], __: MemoryCache) -> float:
        deadline = time.monotonic() + 2.0
        (answer,) = await service.change([deposit("p-1")], wait=True, deadline=deadline)
        assert answer.status is ChangeStatus.PENDING
        return deadline - time.monotonic()

    assert run(rig, scenario) > 0


def test_an_untouched_account_reads_as_zeros_and_an_unknown_request_is_not_found(
    rig: Rig,
) -> None:
    """GetBalance of an account with no change is zeros at version 0; GetChange of an unknown
    id raises RequestNotFound."""

    async def scenario(service: LedgerService, _: Callable[[], None], __: MemoryCache) -> None:
        assert await service.get_balances(99, "EUR") == [Balance(99, "EUR")]
        try:
            await service.get_change("nobody")
        except RequestNotFound:
            return
        raise AssertionError("an unknown request was found")

    run(rig, scenario)
