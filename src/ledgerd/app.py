"""Wiring: builds the backends and the roles this process runs, and runs them."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field

import structlog
from prometheus_client import start_http_server

from ledgerd.api.auth import Authenticator, NonceCache, load_keys
from ledgerd.api.handlers import Handlers
from ledgerd.api.nonces import MemoryNonceCache, RedisNonceCache
from ledgerd.api.rest import RestGateway
from ledgerd.api.server import GrpcServer
from ledgerd.audit_job import AuditJob
from ledgerd.cache import BalanceCache, open_cache
from ledgerd.cache.base import BalanceSink
from ledgerd.cache.memory import MemoryCache
from ledgerd.cache.updater import CacheUpdater
from ledgerd.consumer.outcomes import OutcomeHub
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.leader import CACHE_SYNC_LOCK, OUTBOX_LOCK, LeaderElector
from ledgerd.log import EventLog, open_log
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.outbox.cleanup import OutboxCleaner
from ledgerd.outbox.relay import Relay
from ledgerd.service import HealthProbe, LedgerService
from ledgerd.settings import Settings, SettingsError
from ledgerd.store import Store, open_store
from ledgerd.store.scan import iter_balances
from ledgerd.support.supervisor import Supervisor

log = structlog.get_logger(__name__)


@dataclass
class Backends:
    store: Store
    event_log: EventLog
    cache: BalanceCache

    def close(self) -> None:
        self.cache.close()
        self.event_log.close()
        self.store.close()


def store_from_settings(settings: Settings) -> Store:
    return open_store(
        settings.effective_store_url,
        connect_timeout_s=settings.db_connect_timeout_s,
        pool_size=settings.db_pool_size,
        queue_limit=settings.db_queue_limit,
        mysql_load_data=settings.mysql_load_data,
    )


def open_backends(settings: Settings) -> Backends:
    """Open store, log and cache from their URLs; create schema and topics."""
    store = store_from_settings(settings)
    store.migrate()
    event_log = open_log(
        settings.log_url,
        data_dir=settings.data_dir,
        partition_count=settings.partitions,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    event_log.ensure_topics([settings.topic, settings.dlq_topic])
    cache = open_cache(
        settings.cache_url,
        max_entries=settings.cache_max_entries,
        key_prefix=settings.cache_key_prefix,
    )
    return Backends(store, event_log, cache)


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
        max_accounts_in_memory=settings.consumer_max_accounts_in_memory,
        feed_topic=feed_topic,
    )


@dataclass
class Ledgerd:
    """One ledgerd process: the roles its settings ask for, over shared backends."""

    settings: Settings
    backends: Backends
    auth: Authenticator
    tls: tuple[bytes, bytes] | None = None
    electors: list[LeaderElector] = field(default_factory=list)
    cleaner: OutboxCleaner | None = None
    auditor: AuditJob | None = None
    outcomes: OutcomeHub = field(default_factory=OutcomeHub)
    supervisor: Supervisor = field(default_factory=Supervisor)
    relay: Relay | None = None
    cache_updater: CacheUpdater | None = None
    consumer: BatchConsumer | None = None
    acceptor: Acceptor | None = None
    server: GrpcServer | None = None
    rest: RestGateway | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        backends: Backends,
        auth: Authenticator,
        tls: tuple[bytes, bytes] | None = None,
    ) -> Ledgerd:
        app = cls(settings, backends, auth, tls)
        if settings.start_relay:
            outbox_leader = app.elector(OUTBOX_LOCK)
            app.cleaner = OutboxCleaner(
                backends.store,
                lambda: outbox_leader.token,
                retention_s=settings.outbox_retention_s,
                interval_s=settings.outbox_cleanup_interval_s,
            )
            app.auditor = AuditJob(
                backends.store, outbox_leader.is_leader, settings.audit_interval_s
            )
            app.relay = Relay(
                backends.store,
                backends.event_log.producer(),
                topic=settings.topic,
                partition_count=settings.partitions,
                batch_max_messages=settings.relay_batch_max_messages,
                sweep_interval_s=settings.relay_sweep_interval_s,
                # Without a local acceptor handing rows over, the sweep is the only path.
                sweep_min_age_s=settings.relay_sweep_min_age_s if settings.start_api else 0.0,
                retry_base_ms=settings.relay_retry_base_ms,
                retry_max_ms=settings.relay_retry_max_ms,
                may_sweep=outbox_leader.is_leader,
            )
        sink: BalanceSink | None = None
        if isinstance(backends.cache, MemoryCache):
            sink = backends.cache  # in-process: the consumer writes it directly
        elif settings.start_cache_updater:
            app.cache_updater = CacheUpdater(
                backends.cache,
                workers=settings.cache_updater_workers,
                interval_s=settings.cache_update_interval_ms / 1000,
                full_sync_source=lambda: iter_balances(backends.store),
                full_sync_interval_s=settings.cache_full_sync_interval_s,
                may_run_full_sync=app.elector(CACHE_SYNC_LOCK).is_leader,
            )
            sink = app.cache_updater
        if settings.start_consumer:
            # A shared cache may be fed by an updater in another process: publish to the feed.
            shared = not isinstance(backends.cache, MemoryCache)
            config = consumer_config(
                settings, feed_topic=settings.cache_feed_topic if shared else None
            )
            app.consumer = BatchConsumer(
                backends.store, backends.event_log, sink, app.outcomes, config
            )
            app.supervisor.add_thread("consumer", app.consumer.run, has_work=app.consumer.has_work)
        return app

    def elector(self, lock: str) -> LeaderElector:
        """A contender for ``lock``, run by this process."""
        elector = LeaderElector(
            self.backends.store,
            name=lock,
            ttl_s=self.settings.leader_lock_ttl_s,
            renew_interval_s=self.settings.leader_renew_interval_s,
        )
        self.electors.append(elector)
        return elector

    async def start(self) -> None:
        settings, backends = self.settings, self.backends
        self.outcomes.attach(asyncio.get_running_loop())
        for elector in self.electors:
            # Try for the lock before the jobs start, so a lone process leads at once.
            await asyncio.to_thread(elector.step)
            elector.start()
        if self.cleaner is not None:
            self.cleaner.start()
        if self.auditor is not None:
            self.auditor.start()
        if self.relay is not None:
            self.relay.start()
        if self.cache_updater is not None:
            self.cache_updater.start()
        self.supervisor.start()
        if settings.start_api:
            self.acceptor = Acceptor(
                backends.store,
                on_committed=self.relay.hand_off if self.relay is not None else None,
                batch_max_rows=settings.accept_batch_max_rows,
                queue_max_changes=settings.accept_queue_max_changes,
            )
            await self.acceptor.start()
            service = LedgerService(
                backends.store,
                backends.cache,
                self.acceptor,
                self.outcomes,
                wait_max_s=settings.wait_max_s,
                wait_poll_interval_s=settings.wait_poll_interval_ms / 1000,
                probes=self._probes(),
                log_ping=backends.event_log.ping,
                local_lookup=self.consumer.lookup if self.consumer is not None else None,
            )
            self.server = GrpcServer(
                service,
                settings.grpc_addr,
                settings.max_concurrent_rpcs,
                self.auth,
                self.tls,
            )
            await self.server.start()
            if settings.http_addr:
                self.rest = RestGateway(Handlers(service), settings.http_addr, self.auth)
                await self.rest.start()
        log.info(
            "ledgerd started",
            grpc=settings.grpc_addr if settings.start_api else None,
            http=settings.http_addr or None,
            metrics=settings.metrics_addr,
            store=settings.effective_store_url.split("@")[-1],
            log=settings.log_url,
            cache=settings.cache_url,
            relay=self.relay is not None,
            consumer=self.consumer is not None,
        )

    def _probes(self) -> dict[str, HealthProbe]:
        electors = list(self.electors)

        def leader_probe() -> tuple[bool, str]:
            held = [f"{e.name} (epoch {t.epoch})" for e in electors if (t := e.token)]
            return True, "leads " + ", ".join(held) if held else "follower"

        probes: dict[str, HealthProbe] = {"leader": leader_probe} if electors else {}
        consumer, updater = self.consumer, self.cache_updater
        if consumer is not None:

            def consumer_probe() -> tuple[bool, str]:
                supervised = self.supervisor.health()["consumer"]
                if not supervised.ok:
                    return False, supervised.detail
                paused = consumer.paused_partitions
                if paused:
                    return False, f"paused partitions {paused}"
                return True, f"ok, partitions {consumer.owned_partitions}"

            probes["consumer"] = consumer_probe
        if updater is not None:
            # A cache outage degrades reads but never stops the service.
            probes["cache_updater"] = lambda: (True, "ok" if updater.healthy else "degraded")
        return probes

    async def stop(self) -> None:
        """Graceful: stop accepting, finish calls, commit, drain the relay, close."""
        if self.rest is not None:
            await self.rest.stop()
        if self.server is not None:
            await self.server.stop(self.settings.shutdown_grace_s)
        if self.acceptor is not None:
            await self.acceptor.stop()
        if self.relay is not None:
            await asyncio.to_thread(self.relay.stop)
        if self.consumer is not None:
            await self.supervisor.stop("consumer")
            await asyncio.to_thread(self.consumer.close)
        if self.cache_updater is not None:
            await asyncio.to_thread(self.cache_updater.stop)
        if self.cleaner is not None:
            await asyncio.to_thread(self.cleaner.stop)
        if self.auditor is not None:
            await asyncio.to_thread(self.auditor.stop)
        for elector in self.electors:
            await asyncio.to_thread(elector.stop)
        log.info("ledgerd stopped")


async def serve(settings: Settings) -> None:
    """Run ledgerd until SIGTERM or SIGINT, then shut down gracefully.

    Raises:
        SettingsError: keys or TLS files are unusable (checked before anything starts).
    """
    auth, tls = authenticator(settings), tls_material(settings)
    backends = open_backends(settings)
    host, _, port = settings.metrics_addr.rpartition(":")
    metrics_server, _ = start_http_server(int(port), addr=host)
    app = Ledgerd.build(settings, backends, auth, tls)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await app.start()
        await stopping.wait()
        log.info("ledgerd stopping")
    finally:
        await app.stop()
        metrics_server.shutdown()
        backends.close()
