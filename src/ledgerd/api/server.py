"""The grpc.aio server: BalanceService, grpc.health.v1 and reflection (v1 and v1alpha)."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledgerd.api.auth import Authenticator
from ledgerd.api.gatekeeper import Gatekeeper
from ledgerd.api.handlers import Handlers
from ledgerd.api.introspection import HealthServicer, enable_reflection
from ledgerd.api.servicer import BalanceServicer
from ledgerd.events.tail import EventTail
from ledgerd.runtime.probes import HealthSource
from ledgerd.runtime.supervisor import Lifeline, sleep_unless_stopping
from ledgerd.service import LedgerService
from ledgerd.v1 import balance_pb2, balance_pb2_grpc

SERVICE_NAME = balance_pb2.DESCRIPTOR.services_by_name["BalanceService"].full_name
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a full batch of 10,000 changes fits with room to spare


class GrpcServer:
    """Serves the API on one address; keeps grpc.health.v1 in step with HealthCheck."""

    def __init__(
        self,
        service: LedgerService,
        health_source: HealthSource,
        address: str,
        *,
        max_concurrent_rpcs: int,
        authenticator: Authenticator,
        max_introspection_streams: int,
        introspection_stream_max_life_s: float,
        tls: tuple[bytes, bytes] | None = None,
        events: EventTail | None = None,
    ) -> None:
        self._health_source = health_source
        # No maximum_concurrent_rpcs: grpc would count the health and reflection streams
        # anyone may open against the same limit as BalanceService's calls. The gatekeeper
        # gives each its own budget instead.
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 1),
            ],
        )
        self._handlers = Handlers(service, health_source, events)
        servicer = BalanceServicer(self._handlers, signed=authenticator.enabled)
        # Every service goes through the gatekeeper, so every call is counted and logged;
        # only BalanceService's calls are checked.
        gatekeeper = Gatekeeper(
            authenticator,
            max_calls=max_concurrent_rpcs,
            max_streams=max_introspection_streams,
            stream_max_life_s=introspection_stream_max_life_s,
        )
        gatekeeper.register(
            self._server, balance_pb2_grpc.add_BalanceServiceServicer_to_server, servicer
        )
        self._health = HealthServicer()
        gatekeeper.register(
            self._server, health_pb2_grpc.add_HealthServicer_to_server, self._health
        )
        enable_reflection(self._server, (SERVICE_NAME,), wrap=gatekeeper.wrap)
        if tls is None:
            self.port = self._server.add_insecure_port(address)
        else:
            key, certificate = tls
            credentials = grpc.ssl_server_credentials([(key, certificate)])
            self.port = self._server.add_secure_port(address, credentials)

    async def start(self) -> None:
        await self._server.start()
        await self._refresh_health()

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let in-flight ones finish within the grace period."""
        await self._health.enter_graceful_shutdown()
        self._handlers.end_streams()
        await self._server.stop(grace_s)

    async def run_health(self, lifeline: Lifeline) -> None:
        """Supervised loop: keep grpc.health.v1 in step with the process's health, every second."""
        while not lifeline.stopping:
            lifeline.beat()
            await self._refresh_health()
            await sleep_unless_stopping(lifeline, 1.0)

    async def _refresh_health(self) -> None:
        state = await self._health_source()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if state.serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)
