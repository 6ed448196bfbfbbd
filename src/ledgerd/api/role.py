"""The API role's components: in this process (the acceptor, then the gRPC and REST
listeners), or in N worker processes on one port, which this process owns."""

from __future__ import annotations

import os

from ledgerd.api.auth import Authenticator, NonceCache, load_keys
from ledgerd.api.handlers import Handlers
from ledgerd.api.nonces import MemoryNonceCache, RedisNonceCache
from ledgerd.api.rest import RestGateway
from ledgerd.api.server import GrpcServer
from ledgerd.cache.fence import CacheFence
from ledgerd.events.tail import EventTail
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.outbox.relay import Relay
from ledgerd.runtime.supervisor import Child, Lifeline
from ledgerd.runtime.workers import ApiWorker, serve_command, worker_env
from ledgerd.service import LedgerService
from ledgerd.settings import Settings, SettingsError
from ledgerd.wiring.parts import Parts

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


def declare_api(parts: Parts) -> None:
    """The API in this process: the acceptor (group commit), then the listeners, which
    start after every other component and stop first."""
    settings, backends = parts.settings, parts.backends
    relay = parts.find(Relay)
    acceptor = Acceptor(
        backends.store,
        on_committed=relay.accepted if relay is not None else None,
        on_group_closed=relay.close_group if relay is not None else None,
        on_group_abandoned=relay.abandon_group if relay is not None else None,
        batch_max_rows=settings.accept_batch_max_rows,
        queue_max_changes=settings.accept_queue_max_changes,
        commit_interval_s=settings.accept_commit_interval_ms / 1000,
    )
    parts.supervisor.add(
        Child(
            "acceptor",
            task=acceptor.run,
            has_work=acceptor.has_work,
            wake=acceptor.begin_stop,
            close=acceptor.close,
        )
    )
    listeners = Listeners(parts, acceptor)
    # Its loop keeps grpc.health.v1 in step with the process's health.
    parts.supervisor.add(
        Child(
            "grpc-health",
            task=listeners.run_health,
            start=listeners.start,
            stop=listeners.stop,
            close=listeners.close,
        )
    )
    if settings.api_worker_index:
        # Which process answered: the port is shared by every worker.
        worker = f"{settings.api_worker_index} of {settings.api_workers}"
        parts.info["api_worker"] = lambda: f"{worker}, pid {os.getpid()}"


class Listeners:
    """The gRPC server, and the REST gateway when LEDGERD_HTTP_ADDR is set, over one
    LedgerService."""

    def __init__(self, parts: Parts, acceptor: Acceptor) -> None:
        settings, backends = parts.settings, parts.backends
        self._parts = parts
        self._service = LedgerService(
            backends.store,
            backends.cache,
            acceptor,
            parts.outcomes,
            # A shared cache is fenced through the store when an answer cannot reach it.
            fence=CacheFence(backends.store) if parts.shared_cache else None,
            wait_max_s=settings.wait_max_s,
            wait_poll_interval_s=settings.wait_poll_interval_ms / 1000,
        )
        # What TailEvents reads, gRPC and REST alike (None with events off).
        self._events = (
            EventTail(backends.event_log, settings.events_topic, max_open=settings.events_max_tails)
            if settings.events
            else None
        )
        self._grpc: GrpcServer | None = None  # made on the serving event loop, by start
        self._rest: RestGateway | None = None

    async def start(self) -> None:
        settings, check = self._parts.settings, self._parts.health.check
        self._grpc = GrpcServer(
            self._service,
            check,
            settings.grpc_addr,
            max_concurrent_rpcs=settings.max_concurrent_rpcs,
            authenticator=self._parts.auth,
            max_introspection_streams=settings.introspection_max_streams,
            introspection_stream_max_life_s=settings.introspection_stream_max_life_s,
            tls=self._parts.tls,
            events=self._events,
        )
        await self._grpc.start()
        if settings.http_addr:
            self._rest = RestGateway(
                Handlers(self._service, check, self._events),
                settings.http_addr,
                self._parts.auth,
                max_concurrent_calls=settings.max_concurrent_rpcs,
                max_connections=settings.rest_max_connections,
                header_read_timeout_s=settings.rest_header_read_timeout_s,
                keepalive_timeout_s=settings.rest_keepalive_timeout_s,
            )
            await self._rest.start()

    async def run_health(self, lifeline: Lifeline) -> None:
        assert self._grpc is not None, "started before its loop runs"
        await self._grpc.run_health(lifeline)

    async def stop(self) -> None:
        """Refuse new calls; let those in flight finish within the shutdown grace."""
        if self._rest is not None:
            await self._rest.stop()
        if self._grpc is not None:
            await self._grpc.stop(self._parts.settings.shutdown_grace_s)

    async def close(self) -> None:
        await self._service.close()


def declare_api_workers(parts: Parts) -> None:
    """N API processes on one port, each running the API role (and publishing its own
    rows); this process starts them, replaces one that dies, and stops them together,
    before anything else, so that their last commits still get published."""
    settings = parts.settings
    workers = [
        ApiWorker(
            index,
            serve_command(),
            worker_env(os.environ, settings.metrics_addr, index),
            # The worker's own graceful stop takes up to the grace, then commits.
            stop_timeout_s=settings.shutdown_grace_s + WORKER_STOP_MARGIN_S,
            unresponsive_after_s=settings.component_stall_after_s,
        )
        for index in range(1, settings.api_workers + 1)
    ]
    for worker in workers:
        parts.supervisor.add(Child(worker.name, task=worker.run, stop_group="api_workers"))
    parts.probes["api"] = parts.offer(ApiWorkers(workers)).probe


class ApiWorkers:
    """The API worker processes this process owns."""

    def __init__(self, workers: list[ApiWorker]) -> None:
        self.workers = workers

    def probe(self) -> tuple[bool, str]:
        """Ready while any worker is: the port is shared, a dead worker's listener is gone."""
        ready = sum(worker.ready for worker in self.workers)
        states = "; ".join(worker.describe() for worker in self.workers)
        return ready > 0, f"{ready} of {len(self.workers)} api workers ready: {states}"

    @property
    def stopped_cleanly(self) -> bool:
        return all(worker.stopped_cleanly for worker in self.workers)
