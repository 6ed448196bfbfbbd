"""Each component crashes in-process (a failpoint) and its supervisor restarts it; health shows
the restart, and a component that keeps crashing is reported down."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from component_support import Rig

from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.errors import StoreUnavailable
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.runtime.leader import LeaderElector
from ledgerd.runtime.periodic import PeriodicJob
from ledgerd.runtime.supervisor import Policy, Supervisor
from ledgerd.support import failpoints

FAST = Policy(max_restarts=3, restart_window_s=60, backoff_base_s=0.001, backoff_max_s=0.01)


@pytest.fixture(autouse=True)
def _no_failpoints_left() -> Iterator[None]:
    yield
    failpoints.configure("")


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def deposits(count: int, prefix: str = "r") -> list[ChangeRequest]:
    return [
        ChangeRequest(f"{prefix}-{i}", 1 + i % 5, "USD", ChangeType.DEPOSIT, 10**18)
        for i in range(count)
    ]


def test_relay_crash_after_produce_is_restarted_and_every_row_is_sent(rig: Rig) -> None:
    """relay.after_produce raises once: the relay restarts, and every row still ends SENT."""
    failpoints.configure("relay.after_produce=1*error")
    requests = deposits(20)
    rig.accept(requests)
    relay = rig.relay(sweep_min_age_s=0.0, sweep_interval_s=0.05)
    supervisor = Supervisor(FAST)
    supervisor.add_thread("relay", relay.run, has_work=relay.has_work, wake=relay.wake)
    relay.hand_off(requests, accepted_at_ms=1000)
    supervisor.start()
    ids = [r.request_id for r in requests]

    def all_sent() -> bool:
        stored = rig.store.get_requests(ids)
        return all(row.status is ChangeStatus.SENT for row in stored.values())

    wait_until(all_sent, "every row SENT after the relay's restart")
    detail = supervisor.health()["relay"].detail
    asyncio.run(supervisor.stop_all())
    assert "FailpointError" in detail


def test_a_relay_that_always_crashes_is_reported_down(rig: Rig) -> None:
    """relay.loop raising every round: the supervisor gives up and names the relay."""
    failpoints.configure("relay.loop=error")
    down: list[str] = []
    supervisor = Supervisor(FAST, on_down=down.append)
    relay = rig.relay()
    supervisor.add_thread("relay", relay.run, has_work=relay.has_work, wake=relay.wake)
    supervisor.start()
    wait_until(lambda: down == ["relay"], "relay reported down")
    healthy = supervisor.health()["relay"].ok
    asyncio.run(supervisor.stop_all())
    assert not healthy


def test_leader_elector_crash_is_restarted_and_it_leads(rig: Rig) -> None:
    """leader.loop raises once: after the restart the lone contender holds the lock."""
    failpoints.configure("leader.loop=1*error")
    elector = LeaderElector(rig.store, name="outbox", ttl_s=5, renew_interval_s=0.05)
    supervisor = Supervisor(FAST)
    supervisor.add_thread("leader:outbox", elector.run)
    supervisor.start()
    wait_until(elector.is_leader, "the restarted elector leads")
    detail = supervisor.health()["leader:outbox"].detail
    asyncio.run(supervisor.stop_all())
    elector.release()
    assert "restarted 1 times" in detail


def test_periodic_job_crash_is_restarted_and_its_next_round_runs() -> None:
    """periodic.loop raises once: the job's step still runs on a later round."""
    failpoints.configure("periodic.loop=1*error")
    ran = threading.Event()
    job = PeriodicJob("audit", 0.01, ran.set)
    supervisor = Supervisor(FAST)
    supervisor.add_thread(job.name, job.run, has_work=job.has_work)
    supervisor.start()
    wait_until(ran.is_set, "a round after the restart")
    detail = supervisor.health()["audit"].detail
    asyncio.run(supervisor.stop_all())
    assert "FailpointError" in detail


def test_acceptor_crash_fails_its_group_and_the_next_group_is_accepted(rig: Rig) -> None:
    """acceptor.before_commit raises once: that group's caller gets StoreUnavailable (safe to
    retry), the acceptor restarts, and the retry is accepted."""
    failpoints.configure("acceptor.before_commit=1*error")
    (request,) = deposits(1, prefix="accept")

    async def main() -> tuple[str, ChangeStatus, str]:
        acceptor = Acceptor(rig.store)
        supervisor = Supervisor(FAST)
        supervisor.add_task("acceptor", acceptor.run, wake=acceptor.begin_stop)
        supervisor.start()
        try:
            with pytest.raises(StoreUnavailable) as first:
                await asyncio.wait_for(acceptor.accept([request]), timeout=10)
            retried = await asyncio.wait_for(acceptor.accept([request]), timeout=10)
            detail = supervisor.health()["acceptor"].detail
        finally:
            await supervisor.stop_all()
            acceptor.close()
        return str(first.value), retried[0].stored.status, detail

    error, status, detail = asyncio.run(main())
    assert "acceptance failed" in error
    assert status is ChangeStatus.PENDING
    assert "restarted 1 times" in detail
    assert request.request_id in rig.store.get_requests([request.request_id])


def test_an_acceptor_idle_past_the_stall_age_is_judged_from_its_first_request(rig: Rig) -> None:
    """An acceptor nobody called for longer than stall_after_s is not stalled, and the first
    request after the quiet spell starts its clock: judged by its last commit's age instead,
    the first health check before that request's commit returned found it stalled (an API
    left idle through a bench's 96 s journal prefill exited with the load's first call)."""
    quiet = Policy(max_restarts=3, restart_window_s=60, stall_after_s=0.2)
    (request,) = deposits(1, prefix="quiet")

    async def main() -> tuple[bool, bool, str]:
        acceptor = Acceptor(rig.store)
        supervisor = Supervisor(quiet)
        supervisor.add_task(
            "acceptor", acceptor.run, has_work=acceptor.has_work, wake=acceptor.begin_stop
        )
        supervisor.start()
        try:
            await asyncio.sleep(0.4)  # twice the stall age, with nothing to do
            idle_ok = supervisor.health()["acceptor"].ok
            accepted = asyncio.ensure_future(acceptor.accept([request]))
            await asyncio.sleep(0)  # the request is queued; its commit has not returned
            queued = acceptor.has_work()
            health = supervisor.health()["acceptor"]
            await asyncio.wait_for(accepted, timeout=10)
        finally:
            await supervisor.stop_all()
            acceptor.close()
        return idle_ok, queued and health.ok, health.detail

    idle_ok, ok_with_work, detail = asyncio.run(main())
    assert idle_ok
    assert ok_with_work, detail
