"""Health: is this process alive, and can it do its roles right now?

Two questions, as orchestrators ask them:

* **live**: every supervised component runs and makes progress (none is down
  after repeated failures, none stalled with work). A process that is not live
  answers NOT_SERVING everywhere; a split-role process also exits non-zero.
* **ready**: the backends its roles need answer. Each role needs:

      api            store                (the outbox is where changes are accepted)
      relay          store, log
      consumer       store, log, and no partition paused after failed batches
      cache updater  log, cache           (only with a shared cache)

  A process serving the API answers for the API alone, because a load balancer
  asks whether to send it calls: while Kafka restarts, the API keeps accepting
  into the outbox and stays SERVING, showing ``log: degraded``. A process
  without the API is ready when all of its roles are.

``components`` names every check: ``ok``, ``degraded: …`` (a backend this
process's answer does not depend on), ``unavailable: …`` (one it does),
``read-only: …`` (a store that answers reads but refuses writes: a read-only or
failed-over database, or an embedded store whose writes stopped after an I/O error or
a full disk), and each supervised component's state. A read-only store makes every
role that writes (all but the cache updater) not ready, so a load balancer sends no
more calls; the calls that come are served when they only read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ledgerd.errors import LedgerError, StoreReadOnly
from ledgerd.runtime.supervisor import Supervisor

CHECK_TIMEOUT_S = 2.0
# How old a served process's health answer may be. Its askers come about once a second
# each (grpc.health.v1's refresh loop, a parent's probe of its API worker, orchestrators);
# within a second they share one check instead of pinging every backend each.
HEALTH_MAX_AGE_S = 1.0
_READ_ONLY = "read-only: "

# Extra readiness of a role (e.g. the consumer's paused partitions): () → (ok, detail).
Probe = Callable[[], tuple[bool, str]]
Ping = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Roles:
    api: bool = True
    relay: bool = True
    consumer: bool = True
    cache_updater: bool = True

    @property
    def split(self) -> bool:
        """True when this process runs only some of the roles (an orchestrator runs the rest)."""
        return not (self.api and self.relay and self.consumer and self.cache_updater)


@dataclass(frozen=True, slots=True)
class Health:
    live: bool
    ready: bool
    components: Mapping[str, str]

    @property
    def serving(self) -> bool:
        return self.live and self.ready


# Which backends each role needs to do its work.
_NEEDS = {
    "api": ("store",),
    "relay": ("store", "log"),
    "consumer": ("store", "log"),
    "cache_updater": ("log", "cache"),
}


class HealthChecker:
    """Answers both questions for one process from its roles, backends and supervisor."""

    def __init__(
        self,
        roles: Roles,
        supervisor: Supervisor,
        *,
        store_ping: Ping,
        log_ping: Ping,
        cache_ping: Ping,
        shared_cache: bool,
        role_probes: Mapping[str, Probe] | None = None,
        info: Mapping[str, Callable[[], str]] | None = None,
        max_age_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._roles = roles
        self._supervisor = supervisor
        self._pings: dict[str, Ping] = {"store": store_ping, "log": log_ping, "cache": cache_ping}
        self._shared_cache = shared_cache
        self._role_probes = dict(role_probes or {})
        self._info = dict(info or {})
        self._max_age_s = max_age_s
        self._clock = clock
        self._last: tuple[float, Health] | None = None  # (when its check began, answer)
        self._running: asyncio.Future[Health] | None = None

    def _deciding_roles(self) -> list[str]:
        """The roles whose readiness is this process's readiness."""
        if self._roles.api:
            return ["api"]
        return [
            role
            for role, on in (
                ("relay", self._roles.relay),
                ("consumer", self._roles.consumer),
                # With the in-process cache there is no cache updater to run.
                ("cache_updater", self._roles.cache_updater and self._shared_cache),
            )
            if on
        ]

    async def check(self) -> Health:
        """The process's health: a fresh check, or one begun within ``max_age_s``.

        Several askers share checks: an API worker is asked by its own grpc.health.v1 loop
        and by its parent's readiness probe, each once a second, and every check pings
        three backends from threads. Callers that come while a check runs wait for it."""
        began = self._clock()
        if self._last is not None and began - self._last[0] < self._max_age_s:
            return self._last[1]
        loop = asyncio.get_running_loop()
        running = self._running
        # A check left unfinished by another event loop (one closed mid-check) can never
        # be awaited here: this loop starts its own.
        if running is None or running.get_loop() is not loop:
            running = loop.create_task(self._check_now())
            running.add_done_callback(lambda done: self._finished(done, began))
            self._running = running
        # Shielded: one caller giving up (a probe's timeout) must not cancel the others'.
        return await asyncio.shield(running)

    def _finished(self, done: asyncio.Future[Health], began: float) -> None:
        if self._running is done:
            self._running = None
        if not done.cancelled() and done.exception() is None:
            self._last = (began, done.result())

    async def _check_now(self) -> Health:
        components: dict[str, str] = {}
        deciding = self._deciding_roles()
        needed = {backend for role in deciding for backend in _NEEDS[role]}
        failures = await asyncio.gather(*(_failure(ping) for ping in self._pings.values()))
        down_backends: set[str] = set()
        for name, failure in zip(self._pings, failures, strict=True):
            if failure is None:
                components[name] = "ok"
                continue
            down_backends.add(name)
            if failure.startswith(_READ_ONLY):
                components[name] = failure
            else:
                components[name] = ("unavailable: " if name in needed else "degraded: ") + failure
        ready = not (down_backends & needed)
        for role, probe in self._role_probes.items():
            ok, detail = probe()
            components[role] = detail
            if role in deciding:
                ready = ready and ok
        live = True
        for name, state in self._supervisor.health().items():
            components[f"component:{name}"] = state.detail
            live = live and state.ok
        for name, describe in self._info.items():
            components[name] = describe()
        return Health(live, ready, components)


async def _failure(ping: Ping) -> str | None:
    """None when the backend answers in time, else why not."""
    try:
        await asyncio.wait_for(asyncio.to_thread(ping), timeout=CHECK_TIMEOUT_S)
    except StoreReadOnly as exc:
        return f"{_READ_ONLY}{exc}"
    except LedgerError as exc:
        return str(exc)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # a driver error nobody translated still means "not answering"
        return f"{type(exc).__name__}: {exc}"
    return None
