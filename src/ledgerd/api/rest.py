"""The REST/JSON gateway: BalanceService's operations over HTTP, in this process.

Requests and answers use proto3's JSON mapping (64-bit numbers as text, enums
by name) and go through the same handlers as gRPC. Every error, whatever its
origin, is JSON ``{"code": "<gRPC code name>", "message": "...", "details": [...]}``
(``ledgerd.api.rest_errors``); ``details`` holds the google.rpc.Status details gRPC
sends (ErrorInfo, BadRequest) in protobuf's JSON mapping, ``[]`` if none. Request
decoding is in ``ledgerd.api.rest_input``.
Signing uses the same headers and canonical string as gRPC, with
``"{HTTP method} {path and query}"`` in place of the gRPC method and the raw
HTTP body (empty for GET) as the signed bytes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import grpc
import structlog
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from ledgerd import metrics
from ledgerd.api.auth import SERVICE_PREFIX, Authenticator
from ledgerd.api.calls import MethodCalls, Outcome, access_log_enabled
from ledgerd.api.errors import details_json, rich_status, status_of
from ledgerd.api.handlers import Handlers
from ledgerd.api.openapi import DOCUMENT
from ledgerd.api.rest_connections import GuardedSite
from ledgerd.api.rest_errors import (
    Detail,
    code_of_http_status,
    error_response,
    json_errors,
)
from ledgerd.api.rest_input import (
    UINT32_MAX,
    parse_body,
    path_integer,
    query_boolean,
    query_integer,
    require_json,
)
from ledgerd.errors import (
    InvalidArgument,
    LedgerError,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
)
from ledgerd.signing import KEY_ID_HEADER
from ledgerd.v1 import balance_pb2 as pb

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
# The largest moment (Unix ms) a query may give: the journal's BIGINT.
INT64_MAX = 2**63 - 1
# How often a streaming call looks whether its client is still there.
_HANG_UP_CHECK_S = 0.5
TIMEOUT_HEADER = "x-ledgerd-timeout-ms"

Operation = Callable[[web.Request], Awaitable[Message]]


def _error(code: grpc.StatusCode, message: str, details: Sequence[Detail] = ()) -> web.Response:
    return error_response(code, message, details)


def _ledger_error(error: LedgerError) -> web.Response:
    """The answer to a LedgerError: the same status, message and details as over gRPC."""
    status = rich_status(error)
    return _error(status_of(error), status.message, details_json(status))


def _deadline(request: web.Request) -> float | None:
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidArgument(TIMEOUT_HEADER, "must be milliseconds")
    return time.monotonic() + int(raw) / 1000


class RestGateway:
    """An aiohttp server on ``address`` sharing the gRPC server's service layer.

    Like the gRPC server, it answers RESOURCE_EXHAUSTED past ``max_concurrent_calls``
    calls in progress (counted apart from gRPC's), so neither protocol can queue unbounded
    work behind the other's limit. Its connections are bounded in number and in how long
    a client may hold one without a request (``ledgerd.api.rest_connections``).
    """

    def __init__(
        self,
        handlers: Handlers,
        address: str,
        authenticator: Authenticator,
        *,
        max_concurrent_calls: int,
        max_connections: int,
        header_read_timeout_s: float,
        keepalive_timeout_s: float,
    ) -> None:
        self._handlers = handlers
        self._auth = authenticator
        self._max_concurrent_calls = max_concurrent_calls
        self._max_connections = max_connections
        self._header_read_timeout_s = header_read_timeout_s
        self._keepalive_timeout_s = keepalive_timeout_s
        self.site: GuardedSite | None = None
        self._calls_in_progress = 0
        self._host, _, port = address.rpartition(":")
        self._port = int(port)
        self._runner: web.AppRunner | None = None
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors])
        routes = [
            ("GET", "/v1/balances/{user_id}", "GetBalance", self._get_balance),
            ("POST", "/v1/changes", "ChangeBalance", self._change_balance),
            ("POST", "/v1/changes:batch", "ChangeBalances", self._change_balances),
            ("GET", "/v1/changes/{request_id}", "GetChange", self._get_change),
            ("GET", "/v1/journal/{user_id}/{currency}", "ListJournal", self._list_journal),
            ("GET", "/v1/health", "HealthCheck", self._health),
            ("POST", "/v1/transfers", "Transfer", self._transfer),
            ("GET", "/v1/transfers/{request_id}", "GetTransfer", self._get_transfer),
            ("GET", "/v1/statements/{user_id}/{currency}", "GetStatement", self._get_statement),
            ("POST", "/v1/locks", "LockAccount", self._lock_account),
            ("POST", "/v1/unlocks", "UnlockAccount", self._unlock_account),
            ("GET", "/v1/holds/{user_id}/{hold_id}", "GetHold", self._get_hold),
        ]
        for method, path, rpc, operation in routes:
            app.router.add_route(method, path, self._endpoint(rpc, operation, f"{method} {path}"))
        app.router.add_get("/v1/events", self._tail_events)
        app.router.add_get("/openapi.json", self._openapi)
        self._app = app

    async def start(self) -> None:
        # aiohttp's keep-alive is also its timer for a next request's head (and for the
        # first one, which the guard bounds tighter): see ledgerd.api.rest_connections.
        self._runner = web.AppRunner(
            self._app, access_log=None, keepalive_timeout=self._keepalive_timeout_s
        )
        await self._runner.setup()
        self.site = GuardedSite(
            self._runner,
            self._host,
            self._port,
            max_connections=self._max_connections,
            header_read_timeout_s=self._header_read_timeout_s,
        )
        await self.site.start()

    async def stop(self) -> None:
        self._handlers.end_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _openapi(self, _: web.Request) -> web.Response:
        return web.json_response(DOCUMENT)

    def _endpoint(
        self, rpc: str, operation: Operation, route: str
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        calls = MethodCalls("rest", SERVICE_PREFIX + rpc)

        async def endpoint(request: web.Request) -> web.Response:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            self._calls_in_progress += 1
            try:
                self._check_calls_in_progress()
                require_json(request)
                body = await request.read()
                if self._auth.enabled:
                    await self._verify(request, rpc, body)
                request["body"] = body
                answer = await operation(request)
                text = json.dumps(
                    json_format.MessageToDict(answer, preserving_proto_field_name=True)
                )
                return web.Response(text=text, content_type="application/json")
            except Unauthenticated as exc:
                metrics.AUTH_FAILURES.labels(reason=exc.reason).inc()
                code = grpc.StatusCode.UNAUTHENTICATED
                return _ledger_error(exc)  # the public message and reason only, never which check
            except PermissionDenied as exc:
                metrics.AUTH_FAILURES.labels(reason="scope").inc()
                code = grpc.StatusCode.PERMISSION_DENIED
                return _ledger_error(exc)
            except LedgerError as exc:
                code = status_of(exc)
                return _ledger_error(exc)
            except web.HTTPException as exc:  # answered by the json_errors middleware
                code = code_of_http_status(exc.status)
                raise
            except Exception:  # logged and answered 500 by the json_errors middleware
                code = grpc.StatusCode.INTERNAL
                raise
            finally:
                self._calls_in_progress -= 1
                calls.record(started, _outcome(request, code.name, route, self._auth.enabled))

        return endpoint

    async def _tail_events(self, request: web.Request) -> web.StreamResponse:
        """TailEvents as NDJSON: one BalanceEvent (proto3 JSON) per line, sent as published.

        Errors before the first line are answered like any call's; one after it (the log
        went away) ends the stream with a last line ``{"error": {...}}`` in the same shape.
        """
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        calls = MethodCalls("rest", SERVICE_PREFIX + "TailEvents", "server_stream")
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        self._calls_in_progress += 1
        try:
            self._check_calls_in_progress()
            message = pb.TailEventsRequest(
                from_beginning=query_boolean(request, "from_beginning"),
                limit=query_integer(request, "limit", maximum=UINT32_MAX),
            )
            request["message"] = message  # for the access log
            if self._auth.enabled:
                await self._verify(request, "TailEvents", await request.read())

            async def opened() -> None:
                await response.prepare(request)  # headers out: later changes will be seen

            await _stream_until_gone(request, response, self._handlers.tail_events(message, opened))
            return response
        except LedgerError as exc:
            code = status_of(exc)
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                reason = exc.reason if isinstance(exc, Unauthenticated) else "scope"
                metrics.AUTH_FAILURES.labels(reason=reason).inc()
            if not response.prepared:
                return _ledger_error(exc)
            status = rich_status(exc)
            error = {"code": code.name, "message": status.message}
            await response.write((json.dumps({"error": error}) + "\n").encode())
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            self._calls_in_progress -= 1
            calls.record(
                started, _outcome(request, code.name, "GET /v1/events", self._auth.enabled)
            )

    def _check_calls_in_progress(self) -> None:
        """Raises: Overloaded: more calls in progress than allowed (this one included)."""
        if self._calls_in_progress > self._max_concurrent_calls:
            raise Overloaded(f"too many calls in progress (limit {self._max_concurrent_calls})")

    async def _verify(self, request: web.Request, rpc: str, body: bytes) -> None:
        headers = {key.lower(): value for key, value in request.headers.items()}
        await self._auth.verify(
            f"{request.method} {request.path_qs}", headers, body, scope_method=SERVICE_PREFIX + rpc
        )

    async def _get_balance(self, request: web.Request) -> Message:
        currency = request.query.get("currency", "")
        message = pb.GetBalanceRequest(user_id=path_integer(request, "user_id"), currency=currency)
        if "as_of_unix_ms" in request.query or "as_of_version" in request.query:
            _as_of_query(request, message)
        return await self._handlers.get_balance(message)

    async def _change_balance(self, request: web.Request) -> Message:
        message = parse_body(request["body"], pb.ChangeBalanceRequest())
        request["message"] = message  # for the access log
        return await self._handlers.change_balance(message, _deadline(request))

    async def _change_balances(self, request: web.Request) -> Message:
        message = parse_body(request["body"], pb.ChangeBalancesRequest())
        request["message"] = message  # for the access log
        return await self._handlers.change_balances(message, _deadline(request))

    async def _get_change(self, request: web.Request) -> Message:
        message = pb.GetChangeRequest(request_id=request.match_info["request_id"])
        request["message"] = message  # for the access log
        return await self._handlers.get_change(message)

    async def _list_journal(self, request: web.Request) -> Message:
        message = pb.ListJournalRequest(
            user_id=path_integer(request, "user_id"),
            currency=request.match_info["currency"],
            after_version=query_integer(request, "after_version"),
            limit=query_integer(request, "limit", maximum=UINT32_MAX),
        )
        return await self._handlers.list_journal(message)

    async def _transfer(self, request: web.Request) -> Message:
        message = parse_body(request["body"], pb.TransferRequest())
        request["message"] = message  # for the access log
        return await self._handlers.transfer(message, _deadline(request))

    async def _get_transfer(self, request: web.Request) -> Message:
        message = pb.GetTransferRequest(request_id=request.match_info["request_id"])
        request["message"] = message  # for the access log
        return await self._handlers.get_transfer(message)

    async def _get_hold(self, request: web.Request) -> Message:
        message = pb.GetHoldRequest(
            user_id=path_integer(request, "user_id"), hold_id=request.match_info["hold_id"]
        )
        return await self._handlers.get_hold(message)

    async def _lock_account(self, request: web.Request) -> Message:
        message = parse_body(request["body"], pb.LockAccountRequest())
        request["message"] = message  # for the access log
        return await self._handlers.lock_account(message, _deadline(request), self._actor(request))

    async def _unlock_account(self, request: web.Request) -> Message:
        message = parse_body(request["body"], pb.UnlockAccountRequest())
        request["message"] = message  # for the access log
        return await self._handlers.unlock_account(
            message, _deadline(request), self._actor(request)
        )

    def _actor(self, request: web.Request) -> str:
        """The key that signed the call (verified); empty with signing off."""
        return request.headers.get(KEY_ID_HEADER, "") if self._auth.enabled else ""

    async def _health(self, _: web.Request) -> Message:
        return await self._handlers.health_check(pb.HealthCheckRequest())

    async def _get_statement(self, request: web.Request) -> Message:
        message = pb.GetStatementRequest(
            user_id=path_integer(request, "user_id"),
            currency=request.match_info["currency"],
            from_unix_ms=query_integer(request, "from_unix_ms", maximum=INT64_MAX),
            to_unix_ms=query_integer(request, "to_unix_ms", maximum=INT64_MAX),
            page_size=query_integer(request, "page_size", maximum=UINT32_MAX),
            page_token=request.query.get("page_token", ""),
        )
        request["message"] = message  # for the access log
        return await self._handlers.get_statement(message)


def _as_of_query(request: web.Request, message: pb.GetBalanceRequest) -> None:
    """GetBalance's as-of query parameters, those given (both: the handler refuses them).

    Raises:
        InvalidArgument: a parameter is not an integer in range.
    """
    if "as_of_unix_ms" in request.query:
        message.as_of_unix_ms = query_integer(request, "as_of_unix_ms", maximum=INT64_MAX)
    if "as_of_version" in request.query:
        message.as_of_version = query_integer(request, "as_of_version")


async def _stream_until_gone(
    request: web.Request,
    response: web.StreamResponse,
    responses: AsyncIterator[pb.TailEventsResponse],
) -> None:
    """Write each event as a line until the stream ends or the client hangs up (aiohttp does
    not cancel a handler when its client goes, and no write comes while no event does)."""

    async def write_all() -> None:
        async for item in responses:
            event = json_format.MessageToDict(
                item.event,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,  # as in the topic
            )
            await response.write((json.dumps(event) + "\n").encode())
        if not response.prepared:
            await response.prepare(request)
        await response.write_eof()

    writing = asyncio.ensure_future(write_all())
    try:
        while not writing.done():
            await asyncio.wait({writing}, timeout=_HANG_UP_CHECK_S)
            transport = request.transport
            if not writing.done() and (transport is None or transport.is_closing()):
                raise ConnectionResetError("client went away")
        writing.result()  # its exception, if any
    finally:
        if not writing.done():
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)


def _outcome(request: web.Request, code: str, route: str, signed: bool) -> Outcome:
    """What the access log shows of a REST call (nothing is built while it is off); the
    key id only where calls are signed, as for gRPC."""
    if not access_log_enabled():
        return Outcome(code)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return Outcome(
        code,
        peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else request.remote,
        request=request.get("message"),
        key_id=request.headers.get(KEY_ID_HEADER) if signed else None,
        route=route,
    )
