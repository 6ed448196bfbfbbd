"""Wiring: builds the backends and the roles this process runs, and runs them."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ledgerd.api.auth import Authenticator, NonceCache, load_keys
from ledgerd.api.handlers import Handlers
from ledgerd.api.nonces import MemoryNonceCache, RedisNonceCache
from ledgerd.api.rest import RestGateway
from ledgerd.api.server import GrpcServer
from ledgerd.audit_job import AuditJob
from ledgerd.cache.base import BalanceSink
from ledgerd.cache.fence import CacheFence
from ledgerd.cache.memory import MemoryCache
from ledgerd.cache.updater import CacheUpdater
from ledgerd.consumer.outcomes import OutcomeHub
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.events.publisher import EventPublisher, PublisherConfig
from ledgerd.events.tail import EventTail
from ledgerd.health import HealthChecker, Probe, Roles
from ledgerd.leader import CACHE_SYNC_LOCK, OUTBOX_LOCK, LeaderElector
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.outbox.relay import Relay
from ledgerd.probes import ProbeServer
from ledgerd.service import LedgerService
from ledgerd.settings import Settings, SettingsError, store_location
from ledgerd.store.scan import iter_balances
from ledgerd.support import failpoints
from ledgerd.support.dirlock import embedded_lock_paths, lock_all
from ledgerd.support.supervisor import (
    Lifeline,
    Policy,
    Supervisor,
    TaskRun,
    sleep_unless_stopping,
)
from ledgerd.wiring.backends import Backends, open_backends
from ledgerd.workers import ApiWorker, serve_command, watch_parent, worker_env

log = structlog.get_logger(__name__)

# Beyond the shutdown grace, what an API worker gets to commit its queue and close.
WORKER_STOP_MARGIN_S = 10.0


def authenticator(settings: Settings) -> Authenticator:
    """Signature checks from the configured keys (none configured: signing is off).

    Raises:
        SettingsError: the keys do not parse; the message names the variable.
    """
    variable = "LEDGERD_HMAC_KEYS_FILE" if settings.hmac_keys_file else "LEDGERD_HMAC_KEYS"
    try:
        keys = load_keys(settings.hmac_keys, settings.hmac_keys_file)
    except (ValueError, OSError) as exc:
        raise SettingsError(f"invalid settings: {variable}: {exc}") from None
    nonces: NonceCache
    if settings.cache_url.startswith("redis://"):
        nonces = RedisNonceCache(settings.cache_url, settings.cache_key_prefix)
    else:
        nonces = MemoryNonceCache()
    return Authenticator(keys, nonces)


def tls_material(settings: Settings) -> tuple[bytes, bytes] | None:
    """(key, certificate) PEM bytes when TLS is configured."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    try:
        return settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes()
    except OSError as exc:
        raise SettingsError(f"invalid settings: LEDGERD_TLS_*_FILE: {exc}") from None


def consumer_config(settings: Settings, *, feed_topic: str | None = None) -> ConsumerConfig:
    return ConsumerConfig(
        topic=settings.topic,
        dlq_topic=settings.dlq_topic,
        group_id=settings.consumer_group,
        batch_max_messages=settings.consumer_batch_max_messages,
        batch_delay_s=settings.consumer_batch_delay_ms / 1000,
        poll_timeout_s=settings.consumer_poll_timeout_ms / 1000,
        max_retries=settings.consumer_max_retries,
        max_decision_failures=settings.consumer_max_decision_failures,
        max_accounts_in_memory=settings.consumer_max_accounts_in_memory,
        feed_topic=feed_topic,
        # Half the sweep age: the other half absorbs clock skew between processes.
        trust_window_s=settings.relay_sweep_min_age_s / 2,
    )


@dataclass
class Ledgerd:
    """One ledgerd process: the roles its settings ask for, over shared backends.

    Every long-running component runs under ``supervisor``: registered in start
    order (leaders, leader-only jobs, relay, consumer, acceptor) and stopped in
    reverse, so what feeds a component stops before it.
    """

    settings: Settings
    backends: Backends
    auth: Authenticator
    tls: tuple[bytes, bytes] | None = None
    supervisor: Supervisor = field(default_factory=Supervisor)
    electors: list[LeaderElector] = field(default_factory=list)
    outcomes: OutcomeHub = field(default_factory=OutcomeHub)
    relay: Relay | None = None
    cache_updater: CacheUpdater | None = None
    consumer: BatchConsumer | None = None
    events: EventPublisher | None = None
    acceptor: Acceptor | None = None
    service: LedgerService | None = None
    server: GrpcServer | None = None
    rest: RestGateway | None = None
    health: HealthChecker | None = None
    api_workers: list[ApiWorker] = field(default_factory=list)

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
        app = cls(settings, backends, auth, tls, supervisor)
        signer = MessageSigner(backends.store.message_key())
        # With API workers, the API role runs in them (each publishes its own rows) and
        # this process only owns them.
        api_here = settings.start_api and not settings.runs_api_workers
        # The consumer hands a transfer's credits to a relay too, at once, rather than
        # leaving them to the sweep.
        if api_here or settings.start_relay or settings.start_consumer:
            app.relay = app._relay(signer)
        sink: BalanceSink | None = None
        if isinstance(backends.cache, MemoryCache):
            sink = backends.cache  # in-process: the consumer writes it directly
        elif settings.start_cache_updater:
            app.cache_updater = CacheUpdater(
                backends.cache,
                backends.event_log,
                topic=settings.cache_feed_topic,
                group_id=settings.cache_updater_group,
                full_sync_source=lambda: iter_balances(backends.store),
                full_sync_interval_s=settings.cache_full_sync_interval_s,
                may_run_full_sync=app.elector(CACHE_SYNC_LOCK).is_leader,
                fence=CacheFence(backends.store),
                lease_ttl_s=settings.cache_lease_ttl_s,
            )
            updater = app.cache_updater
            supervisor.add_thread("cache_updater.feed", updater.run_feed)
            supervisor.add_thread("cache_updater.sync", updater.run_full_sync, wake=updater.wake)
        if settings.start_consumer:
            # A shared cache may be fed by an updater in another process: publish to the feed.
            shared = not isinstance(backends.cache, MemoryCache)
            config = consumer_config(
                settings, feed_topic=settings.cache_feed_topic if shared else None
            )
            if settings.events:
                app.events = app._event_publisher()
            app.consumer = BatchConsumer(
                backends.store,
                backends.event_log,
                sink,
                app.outcomes,
                config,
                signer=signer,
                send_on=app.relay.hand_off if app.relay is not None else None,
                on_committed=app.events.hand_off if app.events is not None else None,
            )
            supervisor.add_thread("consumer", app.consumer.run, has_work=app.consumer.has_work)
            if app.events is not None:
                supervisor.add_thread("events", app.events.run, wake=app.events.wake)
        if settings.runs_api_workers:
            for index in range(1, settings.api_workers + 1):
                worker = ApiWorker(
                    index,
                    serve_command(),
                    worker_env(os.environ, settings.metrics_addr, index),
                    # The worker's own graceful stop takes up to the grace, then commits.
                    stop_timeout_s=settings.shutdown_grace_s + WORKER_STOP_MARGIN_S,
                    unresponsive_after_s=settings.component_stall_after_s,
                )
                app.api_workers.append(worker)
                supervisor.add_task(worker.name, worker.run)
        elif settings.start_api:
            app.acceptor = Acceptor(
                backends.store,
                on_committed=app.relay.accepted if app.relay is not None else None,
                on_group_closed=app.relay.close_group if app.relay is not None else None,
                batch_max_rows=settings.accept_batch_max_rows,
                queue_max_changes=settings.accept_queue_max_changes,
            )
            supervisor.add_task(
                "acceptor",
                app.acceptor.run,
                has_work=app.acceptor.has_work,
                wake=app.acceptor.begin_stop,
            )
        app.health = app._health_checker()
        return app

    @property
    def roles(self) -> Roles:
        settings = self.settings
        return Roles(
            api=settings.start_api,
            relay=settings.start_relay,
            consumer=settings.start_consumer,
            cache_updater=settings.start_cache_updater,
        )

    def _relay(self, signer: MessageSigner) -> Relay:
        """The relay: publishes this process's accepted rows at once (API role) and, with
        the relay role, sweeps the outbox while it holds the outbox lock."""
        settings, store, supervisor = self.settings, self.backends.store, self.supervisor
        leader = self.elector(OUTBOX_LOCK) if settings.start_relay else None
        if leader is not None:
            auditor = AuditJob(
                store,
                leader.is_leader,
                settings.audit_interval_s,
                settings.audit_max_in_flight_s,
            )
            supervisor.add_thread(auditor.name, auditor.run, has_work=auditor.has_work)
        relay = Relay(
            store,
            self.backends.event_log.producer(),
            signer,
            topic=settings.topic,
            partition_count=settings.partitions,
            batch_max_messages=settings.relay_batch_max_messages,
            sweep_interval_s=settings.relay_sweep_interval_s,
            sweep_min_age_s=settings.relay_sweep_min_age_s,
            retry_base_ms=settings.relay_retry_base_ms,
            retry_max_ms=settings.relay_retry_max_ms,
            unfinished_warn_s=settings.unfinished_warn_s,
            may_sweep=leader.is_leader if leader is not None else (lambda: False),
            outbox_lock=(lambda: leader.token) if leader is not None else (lambda: None),
        )
        supervisor.add_thread("relay", relay.run, has_work=relay.has_work, wake=relay.wake)
        return relay

    def _event_publisher(self) -> EventPublisher:
        """The publisher of change events for the partitions this process's consumer owns."""

        def owned() -> list[int]:
            return self.consumer.owned_partitions if self.consumer is not None else []

        return EventPublisher(
            self.backends.store,
            self.backends.event_log,
            owned,
            PublisherConfig(
                topic=self.settings.events_topic,
                poll_interval_s=self.settings.events_poll_interval_ms / 1000,
                linger_ms=self.settings.events_linger_ms,
            ),
        )

    @functools.cached_property
    def event_tail(self) -> EventTail | None:
        """What TailEvents reads, gRPC and REST alike (None with events off)."""
        if not self.settings.events:
            return None
        return EventTail(
            self.backends.event_log,
            self.settings.events_topic,
            max_open=self.settings.events_max_tails,
        )

    def elector(self, lock: str) -> LeaderElector:
        """A contender for ``lock``, run by this process under its supervisor."""
        elector = LeaderElector(
            self.backends.store,
            name=lock,
            ttl_s=self.settings.leader_lock_ttl_s,
            renew_interval_s=self.settings.leader_renew_interval_s,
        )
        self.electors.append(elector)
        self.supervisor.add_thread(f"leader:{lock}", elector.run)
        return elector

    async def start(self) -> None:
        settings, backends = self.settings, self.backends
        self.outcomes.attach(asyncio.get_running_loop())
        for elector in self.electors:
            # Try for the lock before the jobs start, so a lone process leads at once.
            await asyncio.to_thread(elector.step)
        self.supervisor.start()
        if self.acceptor is not None:
            assert self.health is not None
            self.service = service = LedgerService(
                backends.store,
                backends.cache,
                self.acceptor,
                self.outcomes,
                # A shared cache is fenced through the store when an answer cannot reach it.
                fence=None
                if isinstance(backends.cache, MemoryCache)
                else CacheFence(backends.store),
                wait_max_s=settings.wait_max_s,
                wait_poll_interval_s=settings.wait_poll_interval_ms / 1000,
            )
            self.server = GrpcServer(
                service,
                self.health.check,
                settings.grpc_addr,
                max_concurrent_rpcs=settings.max_concurrent_rpcs,
                authenticator=self.auth,
                max_introspection_streams=settings.introspection_max_streams,
                introspection_stream_max_life_s=settings.introspection_stream_max_life_s,
                tls=self.tls,
                events=self.event_tail,
            )
            await self.server.start()
            self.supervisor.add_task("grpc-health", self.server.run_health)
            self.supervisor.start()
            if settings.http_addr:
                handlers = Handlers(service, self.health.check, self.event_tail)
                self.rest = RestGateway(
                    handlers,
                    settings.http_addr,
                    self.auth,
                    max_concurrent_calls=settings.max_concurrent_rpcs,
                    max_connections=settings.rest_max_connections,
                    header_read_timeout_s=settings.rest_header_read_timeout_s,
                    keepalive_timeout_s=settings.rest_keepalive_timeout_s,
                )
                await self.rest.start()
        log.info(
            "ledgerd started",
            grpc=settings.grpc_addr if settings.start_api else None,
            api_workers=len(self.api_workers) or None,
            http=settings.http_addr or None,
            metrics=settings.metrics_addr,
            store=",".join(store_location(url) for url in settings.store_urls),
            log=settings.log_url,
            cache=settings.cache_url,
            components=self.supervisor.names,
            failpoints=failpoints.active() or None,
        )

    def _health_checker(self) -> HealthChecker:
        electors, consumer, updater = list(self.electors), self.consumer, self.cache_updater
        probes: dict[str, Probe] = {}
        if consumer is not None:

            def consumer_probe() -> tuple[bool, str]:
                stopped = consumer.stopped_partitions
                if stopped:
                    gaps = "; ".join(f"{p}: {why}" for p, why in sorted(stopped.items()))
                    return False, f"partitions stopped by a gap in the log: {gaps}"
                paused = consumer.paused_partitions
                if paused:
                    return False, f"paused partitions {paused}"
                return True, f"ok, partitions {consumer.owned_partitions}"

            probes["consumer"] = consumer_probe
        if self.api_workers:
            probes["api"] = self._api_workers_probe
        if updater is not None:
            probes["cache_updater"] = lambda: (
                updater.healthy,
                "ok" if updater.healthy else "degraded: cache writes failing",
            )

        def leadership() -> str:
            held = [f"{e.name} (epoch {t.epoch})" for e in electors if (t := e.token)]
            return "leads " + ", ".join(held) if held else "follower"

        info: dict[str, Callable[[], str]] = {"leader": leadership} if electors else {}
        if self.settings.api_worker_index:
            # Which process answered: the port is shared by every worker.
            worker = f"{self.settings.api_worker_index} of {self.settings.api_workers}"
            info["api_worker"] = lambda: f"{worker}, pid {os.getpid()}"
        shared_cache = not isinstance(self.backends.cache, MemoryCache)
        return HealthChecker(
            self.roles,
            self.supervisor,
            store_ping=self.backends.store.ping,
            log_ping=self.backends.event_log.ping,
            cache_ping=self.backends.cache.ping,
            shared_cache=shared_cache,
            role_probes=probes,
            info=info,
        )

    def _api_workers_probe(self) -> tuple[bool, str]:
        """Ready while any worker is: the port is shared, a dead worker's listener is gone."""
        ready = sum(worker.ready for worker in self.api_workers)
        states = "; ".join(worker.describe() for worker in self.api_workers)
        return ready > 0, f"{ready} of {len(self.api_workers)} api workers ready: {states}"

    @property
    def workers_stopped_cleanly(self) -> bool:
        return all(worker.stopped_cleanly for worker in self.api_workers)

    async def stop(self) -> None:
        """Graceful: stop accepting, finish calls, commit, drain the relay, close."""
        # Every API worker drains at once (each is SIGTERMed and waited for), before the
        # relay and consumer here stop: a worker's last commits still get published.
        await asyncio.gather(*(self.supervisor.stop(worker.name) for worker in self.api_workers))
        if self.rest is not None:
            await self.rest.stop()
        if self.server is not None:
            await self.server.stop(self.settings.shutdown_grace_s)
        if self.service is not None:
            await self.service.close()
        await self.auth.close()
        await self.supervisor.stop_all()
        if self.cache_updater is not None:
            await asyncio.to_thread(self.cache_updater.close)
        if self.acceptor is not None:
            self.acceptor.close()
        if self.consumer is not None:
            await asyncio.to_thread(self.consumer.close)
        if self.events is not None:
            await asyncio.to_thread(self.events.close)
        for elector in self.electors:
            await asyncio.to_thread(elector.release)
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
    assert app.health is not None
    probes = ProbeServer(settings.metrics_addr, app.health.check)
    loop = asyncio.get_running_loop()
    if settings.api_worker_index:

        def parent_gone() -> None:
            loop.call_soon_threadsafe(stopping.set)

        app.supervisor.add_thread("parent-watch", watch_parent(parent_gone))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await probes.start()
        # Looks at the components every second, so a stall is noticed without a probe asking.
        app.supervisor.add_task("watchdog", _watch(app.supervisor))
        await app.start()
        await stopping.wait()
        log.info("ledgerd stopping", exit_code=exit_code)
    finally:
        await app.stop()
        await probes.stop()
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
