"""A serving process: its table of roles, built over the backends, run until told to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import structlog

from ledgerd.api.auth import Authenticator
from ledgerd.api.role import (
    ApiWorkers,
    authenticator,
    declare_api,
    declare_api_workers,
    tls_material,
)
from ledgerd.cache.role import declare_cache_updater
from ledgerd.console.web import console_routes
from ledgerd.consumer.role import declare_consumer
from ledgerd.events.role import declare_event_publisher
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.role import declare_audit, declare_hold_expiry, declare_relay
from ledgerd.runtime.collector import settle_collector
from ledgerd.runtime.health import HealthChecker, Roles
from ledgerd.runtime.probes import ProbeServer
from ledgerd.runtime.supervisor import (
    Child,
    Lifeline,
    Policy,
    Supervisor,
    TaskRun,
    sleep_unless_stopping,
)
from ledgerd.runtime.workers import watch_parent
from ledgerd.settings import Settings, SettingsError, store_location
from ledgerd.support import failpoints
from ledgerd.support.dirlock import embedded_lock_paths, lock_all
from ledgerd.wiring.backends import Backends, open_backends
from ledgerd.wiring.parts import Parts, Role

log = structlog.get_logger(__name__)


def _serves_api_here(settings: Settings) -> bool:
    # With API workers, the API role runs in them and this process only owns them.
    return settings.start_api and not settings.runs_api_workers


# The roles a process may run, in start order: each declares its components to the
# supervisor, which starts them in this order and stops them in the reverse one, so what
# feeds a component stops before it (the API before the relay it hands rows to, the
# consumer before the event publisher it hands commits to), and a leader lock, declared
# by the first role that needs it, is released after the jobs it gates.
ROLES: tuple[Role, ...] = (
    Role("audit", lambda parts: parts.settings.start_relay, declare_audit),
    # The consumer hands a transfer's credits to a relay too, at once, rather than
    # leaving them to the sweep; the API hands it each accepted group.
    Role(
        "relay",
        lambda parts: (
            _serves_api_here(parts.settings)
            or parts.settings.start_relay
            or parts.settings.start_consumer
        ),
        declare_relay,
    ),
    Role("hold_expiry", lambda parts: parts.settings.start_relay, declare_hold_expiry),
    # An in-process cache is written by the consumer directly.
    Role(
        "cache_updater",
        lambda parts: parts.shared_cache and parts.settings.start_cache_updater,
        declare_cache_updater,
    ),
    Role(
        "events",
        lambda parts: parts.settings.start_consumer and parts.settings.events,
        declare_event_publisher,
    ),
    Role("consumer", lambda parts: parts.settings.start_consumer, declare_consumer),
    Role("api_workers", lambda parts: parts.settings.runs_api_workers, declare_api_workers),
    Role("api", lambda parts: _serves_api_here(parts.settings), declare_api),
)


class Ledgerd:
    """One ledgerd process: the roles its settings ask for, over shared backends, every
    component owned by one supervisor from its start to its close."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.supervisor = parts.supervisor

    @classmethod
    def build(
        cls,
        settings: Settings,
        backends: Backends,
        auth: Authenticator,
        tls: tuple[bytes, bytes] | None = None,
        *,
        on_down: Callable[[str], None] | None = None,
    ) -> Ledgerd:
        supervisor = Supervisor(
            Policy(
                max_restarts=settings.component_max_restarts,
                restart_window_s=settings.component_restart_window_s,
                stall_after_s=settings.component_stall_after_s,
            ),
            on_down=on_down,
        )
        signer = MessageSigner(backends.store.message_key())
        parts = Parts(settings, backends, auth, tls, supervisor, signer)
        for role in ROLES:
            if role.wanted(parts):
                role.declare(parts)
        return cls(parts)

    @property
    def health(self) -> HealthChecker:
        return self.parts.health

    @property
    def roles(self) -> Roles:
        return self.parts.roles

    @property
    def workers_stopped_cleanly(self) -> bool:
        workers = self.parts.find(ApiWorkers)
        return workers is None or workers.stopped_cleanly

    async def start(self) -> None:
        settings = self.parts.settings
        self.parts.outcomes.attach(asyncio.get_running_loop())
        await self.supervisor.start_all()
        workers = self.parts.find(ApiWorkers)
        log.info(
            "ledgerd started",
            grpc=settings.grpc_addr if settings.start_api else None,
            api_workers=len(workers.workers) if workers is not None else None,
            http=settings.http_addr or None,
            metrics=settings.metrics_addr,
            store=",".join(store_location(url) for url in settings.store_urls),
            log=settings.log_url,
            cache=settings.cache_url,
            components=self.supervisor.names,
            failpoints=failpoints.active() or None,
        )

    async def stop(self) -> None:
        """Graceful: every component stopped and closed, the last started first (the API
        stops taking calls and finishes them, the acceptor commits, the relay drains)."""
        await self.supervisor.stop_all()
        log.info("ledgerd stopped")


async def serve(settings: Settings) -> int:
    """Run ledgerd until SIGTERM or SIGINT, then shut down gracefully; returns the exit code.

    A process running only some of the roles ends with exit code 1 when one of its
    components is down (failing again and again, or stalled), after a graceful stop,
    so that its orchestrator starts a fresh one.

    Raises:
        SettingsError: keys, TLS files or failpoints are unusable (checked before anything
            starts).
        DataDirLocked: another process serves from the embedded data directory.
    """
    configure_failpoints(settings)
    auth, tls = authenticator(settings), tls_material(settings)
    # Before anything opens the embedded files: a second process on them must not migrate,
    # consume or publish.
    data_locks = lock_all(
        embedded_lock_paths(
            settings.data_dir,
            settings.store_urls,
            embedded_log=settings.log_url.startswith("embedded"),
        )
    )
    try:
        backends = open_backends(settings)
    except BaseException:
        for lock in data_locks:
            lock.release()
        raise
    stopping = asyncio.Event()
    exit_code = 0

    def on_down(component: str) -> None:
        nonlocal exit_code
        if app.roles.split:
            log.error(
                "component down; exiting so the orchestrator restarts us", component=component
            )
            exit_code = 1
            stopping.set()

    app = Ledgerd.build(settings, backends, auth, tls, on_down=on_down)
    # Every process serves the operator's page on its operations port (docs/operations.md).
    console = console_routes(app.parts, app.health.check) if settings.console else None
    probes = ProbeServer(settings.metrics_addr, app.health.check, console)
    loop = asyncio.get_running_loop()
    if settings.api_worker_index:

        def parent_gone() -> None:
            loop.call_soon_threadsafe(stopping.set)

        app.supervisor.add(Child("parent-watch", thread=watch_parent(parent_gone)))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await probes.start()
        # Looks at the components every second, so a stall is noticed without a probe asking.
        app.supervisor.add(Child("watchdog", task=_watch(app.supervisor)))
        await app.start()
        settle_collector(applies_changes=app.roles.consumer)
        await stopping.wait()
        log.info("ledgerd stopping", exit_code=exit_code)
    finally:
        await app.stop()
        await probes.stop()
        await auth.close()
        backends.close()
        for lock in data_locks:
            lock.release()
    if not app.workers_stopped_cleanly:
        log.error("an api worker did not stop cleanly; see its log lines above")
        exit_code = exit_code or 1
    return exit_code


def _watch(supervisor: Supervisor) -> TaskRun:
    async def watch(lifeline: Lifeline) -> None:
        while not lifeline.stopping:
            lifeline.beat()
            supervisor.health()  # reports newly down or stalled components to on_down
            await sleep_unless_stopping(lifeline, 1.0)

    return watch


def configure_failpoints(settings: Settings) -> None:
    """Failpoints from LEDGERD_FAILPOINTS, plus the older fault-delay setting.

    Raises:
        SettingsError: the failpoint setting does not parse; the message names it.
    """
    spec = settings.failpoints
    if settings.fault_consumer_commit_delay_ms:
        spec += f";consumer.before_commit=sleep({settings.fault_consumer_commit_delay_ms})"
    try:
        failpoints.configure(spec)
    except ValueError as exc:
        raise SettingsError(f"invalid settings: LEDGERD_FAILPOINTS: {exc}") from None
