"""The gatekeeper of gRPC calls: request decoding, signature checks, metrics and access log.

It wraps each method's handler, once at registration, so it sees the raw request bytes (the
signature covers exactly the bytes the client sent, not a re-serialization),
answers undecodable bodies with INVALID_ARGUMENT (a violation of field ``request``)
instead of grpc's INTERNAL,
and, when keys are configured, verifies the signature and the key's scope.
The standard health service and reflection are registered through it too: they
skip the checks, but every call of every service is counted and logged
(``ledgerd.api.calls``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from ledgerd import metrics
from ledgerd.api.auth import SERVICE_PREFIX, Authenticator
from ledgerd.api.calls import MethodCalls, Outcome, access_log_enabled
from ledgerd.api.errors import abort
from ledgerd.api.signing import KEY_ID_HEADER
from ledgerd.errors import BackendUnavailable, InvalidArgument, PermissionDenied, Unauthenticated

# A generated ``add_…Servicer_to_server`` function; grpc's handler typing is loose.
AddServicer = Callable[[Any, Any], None]
Handler = Any
Context = grpc.aio.ServicerContext[Any, Any]

# grpc's handler attribute of each kind of method, and go-grpc-prometheus's grpc_type.
_KINDS = {
    "unary_unary": ("unary", grpc.unary_unary_rpc_method_handler),
    "unary_stream": ("server_stream", grpc.unary_stream_rpc_method_handler),
    "stream_unary": ("client_stream", grpc.stream_unary_rpc_method_handler),
    "stream_stream": ("bidi_stream", grpc.stream_stream_rpc_method_handler),
}


class _Captured:
    """Stands in for the server while a generated function registers a servicer."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Handler]] = {}

    def add_generic_rpc_handlers(self, _: object) -> None:
        """The generated code registers twice; the registered handlers are enough."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self.services[service] = dict(handlers)


@dataclass(frozen=True, slots=True)
class _Raw:
    """A request as received: the decoded message (None if undecodable) and its bytes."""

    message: Message | None
    body: bytes


class Gatekeeper:
    """Wraps each BalanceService method handler once, when the server is built.

    Not a gRPC server interceptor: an interceptor runs for every call and builds a
    new handler each time, which cost a third of a GetBalance's server time.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def register(
        self, server: grpc.aio.Server, add_servicer: AddServicer, servicer: object
    ) -> None:
        """Register ``servicer`` (through its generated ``add_…_to_server``) gated."""
        captured = _Captured()
        add_servicer(servicer, captured)
        for service, handlers in captured.services.items():
            gated = {
                name: self.wrap(f"/{service}/{name}", handler) for name, handler in handlers.items()
            }
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, gated),))
            server.add_registered_method_handlers(service, gated)  # type: ignore[attr-defined]

    def wrap(self, method: str, handler: Handler) -> Handler:
        """The handler of one method: counted and logged; a BalanceService method also
        sees the raw request bytes and checks signatures."""
        if not method.startswith(SERVICE_PREFIX):
            return _observed(method, handler)
        if handler.unary_stream is not None:
            return self._wrap_stream(method, handler)
        if handler.unary_unary is None:
            return _observed(method, handler)
        inner: Callable[[Message, Any], Any] = handler.unary_unary
        name = method.rsplit("/", 1)[-1]
        calls = MethodCalls("grpc", method)
        deserialize = _raw_decoder(handler.request_deserializer)

        async def behavior(raw: _Raw, context: Context) -> Any:
            started = time.perf_counter()
            code, key_id = "OK", None
            peer = context.peer() if access_log_enabled() else None  # gone once cancelled
            try:
                metadata = self._signed_metadata(context)
                key_id = metadata.get(KEY_ID_HEADER) if metadata is not None else None
                message = await self._admit(method, name, raw, metadata, context)
                return await inner(message, context)
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                calls.record(started, Outcome(code, peer, raw.message, key_id))

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )

    def _wrap_stream(self, method: str, handler: Handler) -> Handler:
        """A server-streaming BalanceService method, gated like a unary one: the checks
        run before the first response."""
        inner: Callable[[Message, Any], AsyncIterator[Any]] = handler.unary_stream
        name = method.rsplit("/", 1)[-1]
        calls = MethodCalls("grpc", method, "server_stream")

        async def behavior(raw: _Raw, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code, key_id = "OK", None
            peer = context.peer() if access_log_enabled() else None  # gone once cancelled
            try:
                metadata = self._signed_metadata(context)
                key_id = metadata.get(KEY_ID_HEADER) if metadata is not None else None
                message = await self._admit(method, name, raw, metadata, context)
                async for response in inner(message, context):
                    yield response
                code = _code_set(context)
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                calls.record(started, Outcome(code, peer, raw.message, key_id))

        return grpc.unary_stream_rpc_method_handler(
            behavior,
            request_deserializer=_raw_decoder(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _signed_metadata(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> dict[str, str] | None:
        """The call's text metadata when signing is on (None when off)."""
        if not self._auth.enabled:
            return None
        return {
            key: value
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str)
        }

    async def _admit(
        self,
        method: str,
        name: str,
        raw: _Raw,
        metadata: dict[str, str] | None,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Message:
        """Before a handler runs: the request decoded (returned), and its signature and scope
        (when signing is on) pass; otherwise the call is aborted."""
        message = raw.message
        if message is None:
            await abort(context, InvalidArgument("request", f"not a valid {name} request message"))
        if metadata is not None:
            await self._check(method, metadata, raw.body, context)
        return message

    async def _check(
        self,
        method: str,
        metadata: dict[str, str],
        body: bytes,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        try:
            await self._auth.verify(method, metadata, body)
        except Unauthenticated as exc:
            metrics.AUTH_FAILURES.labels(reason=exc.reason).inc()
            await abort(context, exc)  # the public message and reason only, never which check
        except PermissionDenied as exc:
            metrics.AUTH_FAILURES.labels(reason="scope").inc()
            await abort(context, exc)
        except BackendUnavailable as exc:
            await abort(context, exc)


def _raw_decoder(decode: Callable[[bytes], Message]) -> Callable[[bytes], _Raw]:
    """A request deserializer keeping the bytes, and None for a message that does not decode."""

    def deserialize(body: bytes) -> _Raw:
        try:
            return _Raw(decode(body), body)
        except (DecodeError, ValueError, TypeError):
            return _Raw(None, body)

    return deserialize


def _observed(method: str, handler: Handler) -> Handler:
    """``handler`` of any kind (unary or streaming), counted and logged as it is."""
    kind = next((kind for kind in _KINDS if getattr(handler, kind) is not None), None)
    if kind is None:
        return handler
    grpc_type, make_handler = _KINDS[kind]
    behavior = getattr(handler, kind)
    calls = MethodCalls("grpc", method, grpc_type)

    if inspect.isasyncgenfunction(behavior):

        async def streamed(request: Any, context: Context) -> AsyncIterator[Any]:
            started, code = time.perf_counter(), "OK"
            peer = context.peer() if access_log_enabled() else None  # gone once cancelled
            try:
                async for response in behavior(request, context):
                    yield response
                code = _code_set(context)
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                calls.record(started, Outcome(code, peer, request))

        observed: Callable[..., Any] = streamed
    elif not inspect.isgeneratorfunction(behavior):

        async def answered(request: Any, context: Context) -> Any:
            started, code = time.perf_counter(), "OK"
            peer = context.peer() if access_log_enabled() else None
            try:
                response = behavior(request, context)
                # A servicer method is a coroutine function, or (grpc's generated stubs of
                # unimplemented methods) a plain one that sets a code and raises.
                if inspect.isawaitable(response):
                    response = await response
                code = _code_set(context)
                return response
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                calls.record(started, Outcome(code, peer, request))

        observed = answered
    else:
        return handler  # a synchronous streaming servicer: none is registered here
    return make_handler(
        observed,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _code_set(context: Context) -> str:
    """The code of a call that returned: OK unless the servicer set another one."""
    code = context.code()
    return "OK" if code is None else code.name


def _code_of(exc: BaseException, context: Context) -> str:
    """The code a call ends with when its handler raised ``exc``."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # grpc cancels the handler when the client went away or the deadline passed.
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    code = context.code()  # set by abort(), or by set_code() before raising
    return "UNKNOWN" if code is None else code.name
