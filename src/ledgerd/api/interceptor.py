"""The gatekeeper of BalanceService calls: request decoding and signature checks.

It wraps each method's handler so it sees the raw request bytes (the
signature covers exactly the bytes the client sent, not a re-serialization),
answers undecodable bodies with INVALID_ARGUMENT instead of grpc's INTERNAL,
and, when keys are configured, verifies the signature and the key's scope.
The standard health service and reflection pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError, Message

from ledgerd import metrics
from ledgerd.api.auth import SERVICE_PREFIX, Authenticator
from ledgerd.errors import BackendUnavailable, PermissionDenied, Unauthenticated

# grpc's own typing of aio interceptors is loose; handlers are typed Any here.
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]
if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


@dataclass(frozen=True, slots=True)
class _Raw:
    """A request as received: the decoded message (None if undecodable) and its bytes."""

    message: Message | None
    body: bytes


class GatekeeperInterceptor(_Interceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(SERVICE_PREFIX):
            return handler
        decode = handler.request_deserializer
        inner = handler.unary_unary
        metadata = {
            key: value
            for key, value in handler_call_details.invocation_metadata or ()
            if isinstance(value, str)
        }

        def deserialize(body: bytes) -> _Raw:
            try:
                return _Raw(decode(body), body)
            except (DecodeError, ValueError, TypeError):
                return _Raw(None, body)

        async def behavior(raw: _Raw, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            name = method.rsplit("/", 1)[-1]
            if raw.message is None:
                _count(name, "INVALID_ARGUMENT")
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"request: not a valid {name} request message"
                )
            if self._auth.enabled:
                await self._check(method, name, metadata, raw.body, context)
            return await inner(raw.message, context)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )

    async def _check(
        self,
        method: str,
        name: str,
        metadata: dict[str, str],
        body: bytes,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        try:
            await self._auth.verify(method, metadata, body)
        except Unauthenticated as exc:
            metrics.AUTH_FAILURES.labels(reason=exc.reason).inc()
            _count(name, "UNAUTHENTICATED")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, Unauthenticated.public_message)
        except PermissionDenied as exc:
            metrics.AUTH_FAILURES.labels(reason="scope").inc()
            _count(name, "PERMISSION_DENIED")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except BackendUnavailable as exc:
            _count(name, "UNAVAILABLE")
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


def _count(method: str, code: str) -> None:
    metrics.RPC_REQUESTS.labels(method=method, code=code).inc()
    metrics.RPC_LATENCY.labels(method=method).observe(0.0)
