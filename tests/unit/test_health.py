"""Health per role: NOT_SERVING only when this process cannot do its role, or is not live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ledgerd.errors import LogUnavailable, StoreReadOnly, StoreUnavailable
from ledgerd.runtime.health import Health, HealthChecker, Probe, Roles
from ledgerd.runtime.supervisor import Lifeline, Policy, Supervisor


def ok() -> None:
    return None


def log_down() -> None:
    raise LogUnavailable("broker gone")


def store_down() -> None:
    raise StoreUnavailable("database gone")


def check(
    roles: Roles,
    *,
    store: Callable[[], None] = ok,
    log: Callable[[], None] = ok,
    cache: Callable[[], None] = ok,
    shared_cache: bool = True,
    probes: dict[str, Probe] | None = None,
    supervisor: Supervisor | None = None,
) -> Health:
    checker = HealthChecker(
        roles,
        supervisor or Supervisor(),
        store_ping=store,
        log_ping=log,
        cache_ping=cache,
        shared_cache=shared_cache,
        role_probes=probes,
    )
    return asyncio.run(checker.check())


API_ONLY = Roles(api=True, relay=False, consumer=False, cache_updater=False)
CONSUMER_ONLY = Roles(api=False, relay=False, consumer=True, cache_updater=False)
RELAY_ONLY = Roles(api=False, relay=True, consumer=False, cache_updater=False)
UPDATER_ONLY = Roles(api=False, relay=False, consumer=False, cache_updater=True)


def test_an_api_that_can_accept_serves_while_the_log_is_down() -> None:
    """The outbox takes changes while Kafka restarts: SERVING, with `log: degraded`."""
    health = check(Roles(), log=log_down)
    assert health.serving
    assert health.components["log"] == "degraded: broker gone"


def test_an_api_without_its_store_does_not_serve() -> None:
    """No store, no durable acceptance: NOT_SERVING, `store: unavailable`."""
    health = check(API_ONLY, store=store_down)
    assert not health.serving
    assert health.components["store"] == "unavailable: database gone"


def test_a_consumer_without_the_log_is_not_ready() -> None:
    """A consumer-only process cannot apply without the log."""
    health = check(CONSUMER_ONLY, log=log_down)
    assert not health.ready
    assert health.components["log"].startswith("unavailable")


def test_a_relay_needs_store_and_log() -> None:
    """A relay-only process is ready with both, not with the store missing."""
    assert check(RELAY_ONLY).serving
    assert not check(RELAY_ONLY, store=store_down).serving


def test_a_cache_updater_needs_the_shared_cache_but_an_api_does_not() -> None:
    """Redis down: the updater-only process is not ready; an API process still serves."""
    assert not check(UPDATER_ONLY, cache=log_down).ready
    degraded = check(API_ONLY, cache=log_down)
    assert degraded.serving
    assert degraded.components["cache"].startswith("degraded")


def test_a_paused_consumer_beside_the_api_does_not_take_the_api_out() -> None:
    """The API decides an API process's answer; the consumer's trouble is shown, not fatal."""
    health = check(Roles(), probes={"consumer": lambda: (False, "paused partitions [1]")})
    assert health.serving
    assert health.components["consumer"] == "paused partitions [1]"


def test_a_paused_consumer_alone_is_not_ready() -> None:
    """Without the API, the consumer's own state decides."""
    health = check(CONSUMER_ONLY, probes={"consumer": lambda: (False, "paused partitions [1]")})
    assert not health.ready


def test_a_down_component_makes_the_process_not_live() -> None:
    """Backends fine, but a supervised component keeps failing: NOT_SERVING, named."""
    supervisor = Supervisor(Policy(max_restarts=0, backoff_base_s=0.001))

    def broken(_: Lifeline) -> None:
        raise RuntimeError("bug")

    supervisor.add_thread("relay", broken)
    supervisor.start()
    deadline = time.monotonic() + 10
    while supervisor.health()["relay"].ok:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    health = check(Roles(), supervisor=supervisor)
    asyncio.run(supervisor.stop_all())
    assert not health.live
    assert not health.serving
    assert health.components["component:relay"].startswith("down: failed")


def store_read_only() -> None:
    raise StoreReadOnly("mysql @@read_only is ON")


def test_a_read_only_store_is_named_and_the_api_is_not_ready() -> None:
    """A store that refuses writes: `store: read-only: …`, NOT_SERVING for an API process."""
    health = check(API_ONLY, store=store_read_only)
    assert not health.serving
    assert health.components["store"] == "read-only: mysql @@read_only is ON"


def test_a_read_only_store_does_not_stop_a_cache_updater() -> None:
    """A cache updater writes no store: it stays ready, and the store still shows read-only."""
    health = check(UPDATER_ONLY, store=store_read_only)
    assert health.serving
    assert health.components["store"].startswith("read-only: ")


def test_askers_within_the_max_age_share_one_check_and_a_later_one_pings_again() -> None:
    """Checks begun within max_age_s of the last one, or while one runs, reuse its answer
    (each check pings every backend); past the age, the backends are pinged again and a
    change shows."""
    pings: list[str] = []
    store_state = {"down": False}

    def store() -> None:
        pings.append("store")
        time.sleep(0.05)  # long enough for the concurrent askers to overlap it
        if store_state["down"]:
            raise StoreUnavailable("database gone")

    now = [100.0]
    checker = HealthChecker(
        API_ONLY,
        Supervisor(),
        store_ping=store,
        log_ping=ok,
        cache_ping=ok,
        shared_cache=True,
        max_age_s=1.0,
        clock=lambda: now[0],
    )

    async def main() -> list[Health]:
        together = await asyncio.gather(checker.check(), checker.check(), checker.check())
        now[0] += 0.5
        store_state["down"] = True
        within_age = await checker.check()
        now[0] += 0.6
        past_age = await checker.check()
        return [*together, within_age, past_age]

    answers = asyncio.run(main())
    assert pings == ["store", "store"]
    assert all(answer.serving for answer in answers[:4])
    assert not answers[4].ready
    assert answers[4].components["store"] == "unavailable: database gone"


def test_a_check_still_running_on_another_loop_does_not_hold_up_this_loops_check() -> None:
    """A check begun on one event loop and not finished there (a loop stopped or closed
    mid-check) is never awaited from another: that loop runs its own check and answers."""
    pings: list[str] = []
    checker = HealthChecker(
        API_ONLY,
        Supervisor(),
        store_ping=lambda: pings.append("store"),
        log_ping=ok,
        cache_ping=ok,
        shared_cache=True,
    )
    original = checker._check_now
    gate = asyncio.Event()

    async def held() -> Health:
        await gate.wait()
        return await original()

    async def begin() -> tuple[asyncio.Future[Health], asyncio.Future[Health]]:
        checker._check_now = held  # type: ignore[method-assign]
        asking = asyncio.ensure_future(checker.check())
        await asyncio.sleep(0)
        checker._check_now = original  # type: ignore[method-assign]
        assert checker._running is not None
        return asking, checker._running

    first_loop = asyncio.new_event_loop()
    try:
        asking, running = first_loop.run_until_complete(begin())
        health = asyncio.run(asyncio.wait_for(checker.check(), timeout=5))
        assert health.serving and pings == ["store"] and not running.done()
        gate.set()  # the first loop's check ends too, when that loop runs again
        assert first_loop.run_until_complete(asking).serving
        assert pings == ["store", "store"]
    finally:
        first_loop.close()
