"""What the roles of one serving process share while each declares its components."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

from ledgerd.cache.memory import MemoryCache
from ledgerd.outcomes import OutcomeHub
from ledgerd.runtime.health import HEALTH_MAX_AGE_S, HealthChecker, Probe, Roles
from ledgerd.runtime.leader import LeaderElector
from ledgerd.runtime.supervisor import Child, Supervisor

if TYPE_CHECKING:
    from ledgerd.api.auth import Authenticator
    from ledgerd.log.signing import MessageSigner
    from ledgerd.settings import Settings
    from ledgerd.wiring.backends import Backends

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Role:
    """One line of a process's table of roles: when it runs, and how it declares its
    components (to ``parts.supervisor``, in start order)."""

    name: str
    wanted: Callable[[Parts], bool]
    declare: Callable[[Parts], None]


@dataclass
class Parts:
    """The backends and the supervisor a process's roles share, and what one role offers
    another (the relay a consumer hands credits to, the consumer whose partitions the
    event publisher follows), found by type."""

    settings: Settings
    backends: Backends
    auth: Authenticator
    tls: tuple[bytes, bytes] | None
    supervisor: Supervisor
    signer: MessageSigner
    outcomes: OutcomeHub = field(default_factory=OutcomeHub)
    # What health reports beside the supervisor's components (filled by the roles).
    probes: dict[str, Probe] = field(default_factory=dict)
    info: dict[str, Callable[[], str]] = field(default_factory=dict)
    electors: dict[str, LeaderElector] = field(default_factory=dict)
    _offered: dict[type, object] = field(default_factory=dict)

    def offer(self, part: T) -> T:
        """Make ``part`` findable by the roles declared after this one; returns it."""
        self._offered[type(part)] = part
        return part

    def find(self, kind: type[T]) -> T | None:
        """The part of type ``kind`` a role offered, if one runs in this process."""
        return cast("T | None", self._offered.get(kind))

    @property
    def shared_cache(self) -> bool:
        """A cache other processes read too (Redis), not this process's memory."""
        return not isinstance(self.backends.cache, MemoryCache)

    @property
    def roles(self) -> Roles:
        settings = self.settings
        return Roles(
            api=settings.start_api,
            relay=settings.start_relay,
            consumer=settings.start_consumer,
            cache_updater=settings.start_cache_updater,
        )

    def elector(self, lock: str) -> LeaderElector:
        """The contender for ``lock`` in this process, supervised from the first role
        that asks for it (so it starts before, and stops after, the jobs it gates)."""
        if lock in self.electors:
            return self.electors[lock]
        elector = LeaderElector(
            self.backends.store,
            name=lock,
            ttl_s=self.settings.leader_lock_ttl_s,
            renew_interval_s=self.settings.leader_renew_interval_s,
        )
        self.electors[lock] = elector
        self.supervisor.add(
            Child(
                f"leader:{lock}",
                thread=elector.run,
                # Try for the lock before the jobs start, so a lone process leads at once.
                start=lambda: asyncio.to_thread(elector.step),
                close=lambda: asyncio.to_thread(elector.release),
            )
        )
        return elector

    @functools.cached_property
    def health(self) -> HealthChecker:
        """The process's health, over every probe the roles declared (first read once
        every role is declared)."""
        electors = list(self.electors.values())

        def leadership() -> str:
            held = [f"{e.name} (epoch {t.epoch})" for e in electors if (t := e.token)]
            return "leads " + ", ".join(held) if held else "follower"

        info = {"leader": leadership} if electors else {}
        return HealthChecker(
            self.roles,
            self.supervisor,
            store_ping=self.backends.store.ping,
            log_ping=self.backends.event_log.ping,
            cache_ping=self.backends.cache.ping,
            shared_cache=self.shared_cache,
            role_probes=self.probes,
            info=info | self.info,
            max_age_s=HEALTH_MAX_AGE_S,
        )
