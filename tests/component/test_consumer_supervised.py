"""The consumer under a Supervisor: a crash anywhere in a round restarts it without
skipping or repeating a change, and a crash every round reports it down."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from component_support import Rig
from prometheus_client import REGISTRY

from ledgerd.audit import audit
from ledgerd.consumer.worker import BatchConsumer
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.runtime.supervisor import Policy, Supervisor
from ledgerd.support import failpoints

USERS = 5
# Restarts come quickly, and a failure leaves the health detail after one second.
QUICK = Policy(max_restarts=5, restart_window_s=1.0, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.fixture(autouse=True)
def _no_failpoints() -> Iterator[None]:
    failpoints.configure("")
    yield
    failpoints.configure("")


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def failures(name: str) -> float:
    value = REGISTRY.get_sample_value("ledgerd_component_failures_total", {"component": name})
    return value or 0.0


def retries() -> float:
    return REGISTRY.get_sample_value("ledgerd_consumer_retries_total") or 0.0


@contextmanager
def supervised(
    consumer: BatchConsumer, name: str, policy: Policy, on_down: Callable[[str], None] | None = None
) -> Iterator[Supervisor]:
    supervisor = Supervisor(policy, on_down=on_down)
    supervisor.add_thread(name, consumer.run, has_work=consumer.has_work)
    supervisor.start()
    try:
        yield supervisor
    finally:
        asyncio.run(supervisor.stop_all())
        consumer.close()


def wave(rig: Rig, number: int) -> list[ChangeRequest]:
    """Three deposits of 1 for each user, accepted and published to the log."""
    requests = [
        ChangeRequest(f"w{number}-{n}", n % USERS + 1, "USD", ChangeType.DEPOSIT, SCALE)
        for n in range(3 * USERS)
    ]
    rig.accept(requests)
    rig.relay().run_until_idle()
    return requests


def all_applied(rig: Rig, requests: list[ChangeRequest]) -> Callable[[], bool]:
    ids = [r.request_id for r in requests]
    return lambda: (
        {s.status for s in rig.store.get_requests(ids).values()} == {ChangeStatus.APPLIED}
    )


@pytest.mark.parametrize(
    "spec",
    ["consumer.before_commit=1*error", "consumer.after_commit=1*error", "consumer.loop=1*error"],
)
def test_a_crash_restarts_the_consumer_and_applies_every_change_once(rig: Rig, spec: str) -> None:
    """An exception in a round (before the commit, after it, or between batches) is
    restarted by the supervisor; every change applies exactly once, before and after,
    no batch needs a retry, and the component's health returns to ok."""
    name = "consumer-" + spec.partition("=")[0]
    consumer = rig.consumer()
    with supervised(consumer, name, QUICK) as supervisor:
        first = wave(rig, 0)  # warms the consumer's memory before the crash
        wait_for(all_applied(rig, first), "the first wave")
        before, retried = failures(name), retries()
        failpoints.configure(spec)
        second = wave(rig, 1)
        wait_for(lambda: failures(name) > before, "the supervisor to see the crash")
        wait_for(all_applied(rig, second), "the wave in hand at the crash")
        third = wave(rig, 2)  # decided from what the restarted consumer holds
        wait_for(all_applied(rig, third), "the wave after the restart")
        wait_for(lambda: supervisor.health()[name].detail == "ok", "health to return to ok")
        assert supervisor.health()[name].ok
    assert failures(name) == before + 1
    # Decided right the first time: memory held no balance older than the store's.
    assert retries() == retried
    for user in range(1, USERS + 1):
        (balance,) = rig.store.get_balances(user, "USD")
        assert (balance.available, balance.version) == (9 * SCALE, 9)
    report = audit(rig.store)
    assert report.ok, report.problems
    assert report.journal_entries == 9 * USERS


def test_a_consumer_failing_every_round_is_reported_down(rig: Rig) -> None:
    """With a failpoint raising before every commit, the supervisor gives up after
    max_restarts failures: health says down and on_down is called; nothing is applied."""
    name = "consumer-always-failing"
    down = threading.Event()
    policy = Policy(max_restarts=2, restart_window_s=60.0, backoff_base_s=0.01, backoff_max_s=0.02)
    failpoints.configure("consumer.before_commit=error")
    consumer = rig.consumer()

    def on_down(component: str) -> None:
        assert component == name
        down.set()

    with supervised(consumer, name, policy, on_down) as supervisor:
        requests = wave(rig, 0)
        assert down.wait(60), "the supervisor never reported the consumer down"
        health = supervisor.health()[name]
        assert not health.ok
        assert "down" in health.detail and "FailpointError" in health.detail
    statuses = {s.status for s in rig.store.get_requests([r.request_id for r in requests]).values()}
    assert statuses == {ChangeStatus.SENT}
    assert audit(rig.store).journal_entries == 0
