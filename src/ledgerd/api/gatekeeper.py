"""The gatekeeper of gRPC calls: request decoding, signature checks, metrics and access log.

It wraps each method's handler, once at registration, so it sees the raw request bytes (the
signature covers exactly the bytes the client sent, not a re-serialization),
answers undecodable bodies with INVALID_ARGUMENT (a violation of field ``request``)
instead of grpc's INTERNAL,
and, when keys are configured, verifies the signature and the key's scope.
The standard health service and reflection are registered through it too: they
skip the checks, but every call of every service is counted and logged
(``ledgerd.api.calls``).

It also admits calls, with two budgets that cannot eat into each other
(grpc's own ``maximum_concurrent_rpcs`` counted every call of every service, so
idle health Watch streams, which anyone may open, locked every client out):

* BalanceService calls in progress, at most ``max_calls`` (``LEDGERD_MAX_CONCURRENT_RPCS``);
  past it a call ends at once with RESOURCE_EXHAUSTED.
* Streams of the standard services (health Watch, reflection), at most ``max_streams``
  open at once, each ended with UNAVAILABLE after ``stream_max_life_s`` (a client
  calls again: gRPC's health checking restarts a Watch at once when the ended one
  had answered). Their unary calls (health Check, List) finish at once and are not capped.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from ledgerd import metrics
from ledgerd.api.auth import SERVICE_PREFIX, Authenticator
from ledgerd.api.calls import MethodCalls, Outcome, access_log_enabled
from ledgerd.api.errors import abort
from ledgerd.errors import (
    BackendUnavailable,
    InvalidArgument,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
)
from ledgerd.signing import KEY_ID_HEADER

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


@dataclass(slots=True)
class StreamBudget:
    """How many standard-service streams may be open at once, and for how long each."""

    max_open: int
    max_life_s: float
    open: int = 0


class _LifeOver(Exception):
    """A standard-service stream reached its maximum life."""


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

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        max_calls: int,
        max_streams: int,
        stream_max_life_s: float,
    ) -> None:
        self._auth = authenticator
        self._max_calls = max_calls
        self._calls_in_progress = 0
        self._streams = StreamBudget(max_streams, stream_max_life_s)

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
            return _observed(method, handler, self._streams)
        if handler.unary_stream is not None:
            return self._wrap_stream(method, handler)
        if handler.unary_unary is None:
            return _observed(method, handler, self._streams)
        inner: Callable[[Message, Any], Any] = handler.unary_unary
        name = method.rsplit("/", 1)[-1]
        calls = MethodCalls("grpc", method)
        deserialize = _raw_decoder(handler.request_deserializer)

        async def behavior(raw: _Raw, context: Context) -> Any:
            started = time.perf_counter()
            code, key_id = "OK", None
            peer = context.peer() if access_log_enabled() else None  # gone once cancelled
            self._calls_in_progress += 1
            try:
                if self._calls_in_progress > self._max_calls:  # this one included
                    await self._refuse(context)
                metadata = self._signed_metadata(context)
                key_id = metadata.get(KEY_ID_HEADER) if metadata is not None else None
                message = await self._admit(method, name, raw, metadata, context)
                return await inner(message, context)
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                self._calls_in_progress -= 1
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
            self._calls_in_progress += 1
            try:
                if self._calls_in_progress > self._max_calls:  # this one included
                    await self._refuse(context)
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
                self._calls_in_progress -= 1
                calls.record(started, Outcome(code, peer, raw.message, key_id))

        return grpc.unary_stream_rpc_method_handler(
            behavior,
            request_deserializer=_raw_decoder(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    async def _refuse(self, context: Context) -> None:
        """Aborts a call past the limit with RESOURCE_EXHAUSTED: before any decoding or
        signature check, so a flood costs little."""
        await abort(context, Overloaded(f"too many calls in progress (limit {self._max_calls})"))

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


def _observed(method: str, handler: Handler, streams: StreamBudget) -> Handler:
    """``handler`` of any kind (unary or streaming), counted and logged as it is; a streaming
    one also admitted within ``streams`` and ended when its life is over."""
    kind = next((kind for kind in _KINDS if getattr(handler, kind) is not None), None)
    if kind is None:
        return handler
    grpc_type, make_handler = _KINDS[kind]
    behavior = getattr(handler, kind)
    calls = MethodCalls("grpc", method, grpc_type)
    observed: Callable[..., Any]
    if inspect.isasyncgenfunction(behavior):
        observed = _observed_generator(behavior, calls, streams)
    elif inspect.isgeneratorfunction(behavior):
        return handler  # a synchronous streaming servicer: none is registered here
    elif kind == "unary_unary":
        observed = _observed_unary(behavior, calls)
    else:  # a coroutine that sends with context.write (health's Watch)
        observed = _observed_writer(behavior, calls, streams)
    return make_handler(
        observed,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _observed_generator(
    behavior: Callable[..., AsyncGenerator[Any, None]], calls: MethodCalls, streams: StreamBudget
) -> Callable[..., AsyncIterator[Any]]:
    async def streamed(request: Any, context: Context) -> AsyncIterator[Any]:
        started, code = time.perf_counter(), "OK"
        peer = context.peer() if access_log_enabled() else None  # gone once cancelled
        streams.open += 1
        try:
            await _admit_stream(streams, context)
            try:
                async for response in _until_life_over(
                    behavior(request, context), streams.max_life_s
                ):
                    yield response
            except _LifeOver:
                await _end_stream(streams, context)
            code = _code_set(context)
        except BaseException as exc:
            code = _code_of(exc, context)
            raise
        finally:
            streams.open -= 1
            calls.record(started, Outcome(code, peer, request))

    return streamed


def _observed_unary(behavior: Callable[..., Any], calls: MethodCalls) -> Callable[..., Any]:
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

    return answered


def _observed_writer(
    behavior: Callable[..., Any], calls: MethodCalls, streams: StreamBudget
) -> Callable[..., Any]:
    async def written(request: Any, context: Context) -> Any:
        started, code = time.perf_counter(), "OK"
        peer = context.peer() if access_log_enabled() else None
        streams.open += 1
        try:
            await _admit_stream(streams, context)
            life = asyncio.timeout(streams.max_life_s)
            try:
                async with life:
                    response = await behavior(request, context)
            except TimeoutError:
                if not life.expired():
                    raise
                await _end_stream(streams, context)
            code = _code_set(context)
            return response
        except BaseException as exc:
            code = _code_of(exc, context)
            raise
        finally:
            streams.open -= 1
            calls.record(started, Outcome(code, peer, request))

    return written


async def _admit_stream(streams: StreamBudget, context: Context) -> None:
    """Aborts the stream (RESOURCE_EXHAUSTED) when more are open than allowed, this one
    included."""
    if streams.open > streams.max_open:
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"too many health and reflection streams open (limit {streams.max_open})",
        )


async def _end_stream(streams: StreamBudget, context: Context) -> None:
    """Ends a stream whose life is over with UNAVAILABLE: the client calls again."""
    await context.abort(
        grpc.StatusCode.UNAVAILABLE,
        f"stream ended after its maximum life of {streams.max_life_s:g} s; call again",
    )


async def _until_life_over(
    responses: AsyncGenerator[Any, None], life_s: float
) -> AsyncIterator[Any]:
    """The responses of ``responses`` until it ends, or raises _LifeOver once ``life_s`` passed.

    Each response is awaited in a task of its own, raced against the deadline: a stream
    that has nothing to send (an idle Watch, a reflection stream waiting for its client)
    is ended all the same. Only the standard services' streams pay for the task.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + life_s
    step: asyncio.Future[Any] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(responses))
            done, _ = await asyncio.wait({step}, timeout=max(0.0, deadline - loop.time()))
            if not done:
                raise _LifeOver
            try:
                response = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield response
    finally:
        if step is not None and not step.done():
            # The generator runs inside this task: it must stop before it can be closed.
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)
        await responses.aclose()


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
