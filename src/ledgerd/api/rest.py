"""The REST/JSON gateway: BalanceService's operations over HTTP, in this process.

Requests and answers use proto3's JSON mapping (64-bit numbers as text, enums
by name) and go through the same handlers as gRPC. Errors are JSON
``{"code": "<gRPC code name>", "message": "..."}`` with the HTTP status of the
table below. Signing uses the same headers and canonical string as gRPC, with
``"{HTTP method} {path and query}"`` in place of the gRPC method and the raw
HTTP body (empty for GET) as the signed bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import grpc
import structlog
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from ledgerd import metrics
from ledgerd.api.auth import SERVICE_PREFIX, Authenticator
from ledgerd.api.calls import MethodCalls, Outcome, access_log_enabled, code_of_http_status
from ledgerd.api.errors import status_of
from ledgerd.api.handlers import Handlers
from ledgerd.api.openapi import DOCUMENT
from ledgerd.api.signing import KEY_ID_HEADER
from ledgerd.errors import InvalidArgument, LedgerError, PermissionDenied, Unauthenticated
from ledgerd.v1 import balance_pb2 as pb

log = structlog.get_logger(__name__)

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
}
MAX_BODY_BYTES = 16 * 1024 * 1024
TIMEOUT_HEADER = "x-ledgerd-timeout-ms"

Operation = Callable[[web.Request], Awaitable[Message]]


def _error(code: grpc.StatusCode, message: str) -> web.Response:
    body = json.dumps({"code": code.name, "message": message})
    return web.Response(
        status=HTTP_STATUS.get(code, 500), text=body, content_type="application/json"
    )


def _parse(body: bytes, message: Message) -> Message:
    try:
        return json_format.Parse(body or b"{}", message)
    except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidArgument(
            "request", f"not a valid JSON {message.DESCRIPTOR.name}: {exc}"
        ) from None


def _integer(request: web.Request, name: str, source: str = "path") -> int:
    raw = request.match_info.get(name) if source == "path" else request.query.get(name, "0")
    if raw is None or not raw.isdigit() or len(raw) > 20:
        raise InvalidArgument(name, "must be a non-negative integer")
    return int(raw)


def _deadline(request: web.Request) -> float | None:
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidArgument(TIMEOUT_HEADER, "must be milliseconds")
    return time.monotonic() + int(raw) / 1000


class RestGateway:
    """An aiohttp server on ``address`` sharing the gRPC server's service layer."""

    def __init__(self, handlers: Handlers, address: str, authenticator: Authenticator) -> None:
        self._handlers = handlers
        self._auth = authenticator
        self._host, _, port = address.rpartition(":")
        self._port = int(port)
        self._runner: web.AppRunner | None = None
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        routes = [
            ("GET", "/v1/balances/{user_id}", "GetBalance", self._get_balance),
            ("POST", "/v1/changes", "ChangeBalance", self._change_balance),
            ("POST", "/v1/changes:batch", "ChangeBalances", self._change_balances),
            ("GET", "/v1/changes/{request_id}", "GetChange", self._get_change),
            ("GET", "/v1/journal/{user_id}/{currency}", "ListJournal", self._list_journal),
            ("GET", "/v1/health", "HealthCheck", self._health),
        ]
        for method, path, rpc, operation in routes:
            app.router.add_route(method, path, self._endpoint(rpc, operation, f"{method} {path}"))
        app.router.add_get("/openapi.json", self._openapi)
        self._app = app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port, reuse_port=True).start()

    async def stop(self) -> None:
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
            code = grpc.StatusCode.OK.name
            try:
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
                code = grpc.StatusCode.UNAUTHENTICATED.name
                return _error(grpc.StatusCode.UNAUTHENTICATED, Unauthenticated.public_message)
            except PermissionDenied as exc:
                metrics.AUTH_FAILURES.labels(reason="scope").inc()
                code = grpc.StatusCode.PERMISSION_DENIED.name
                return _error(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            except LedgerError as exc:
                status = status_of(exc)
                code = status.name
                return _error(status, str(exc))
            except web.HTTPException as exc:  # aiohttp's own answers, e.g. a body too large
                code = code_of_http_status(exc.status)
                raise
            except BaseException:
                code = grpc.StatusCode.UNKNOWN.name
                raise
            finally:
                calls.record(started, _outcome(request, code, route, self._auth.enabled))

        return endpoint

    async def _verify(self, request: web.Request, rpc: str, body: bytes) -> None:
        headers = {key.lower(): value for key, value in request.headers.items()}
        await self._auth.verify(
            f"{request.method} {request.path_qs}", headers, body, scope_method=SERVICE_PREFIX + rpc
        )

    async def _get_balance(self, request: web.Request) -> Message:
        currency = request.query.get("currency", "")
        message = pb.GetBalanceRequest(
            user_id=_bounded(_integer(request, "user_id")), currency=currency
        )
        return await self._handlers.get_balance(message)

    async def _change_balance(self, request: web.Request) -> Message:
        message = _parse(request["body"], pb.ChangeBalanceRequest())
        assert isinstance(message, pb.ChangeBalanceRequest)
        request["message"] = message  # for the access log
        return await self._handlers.change_balance(message, _deadline(request))

    async def _change_balances(self, request: web.Request) -> Message:
        message = _parse(request["body"], pb.ChangeBalancesRequest())
        assert isinstance(message, pb.ChangeBalancesRequest)
        request["message"] = message  # for the access log
        return await self._handlers.change_balances(message, _deadline(request))

    async def _get_change(self, request: web.Request) -> Message:
        message = pb.GetChangeRequest(request_id=request.match_info["request_id"])
        request["message"] = message  # for the access log
        return await self._handlers.get_change(message)

    async def _list_journal(self, request: web.Request) -> Message:
        message = pb.ListJournalRequest(
            user_id=_bounded(_integer(request, "user_id")),
            currency=request.match_info["currency"],
            after_version=_bounded(_integer(request, "after_version", "query")),
            limit=_bounded(_integer(request, "limit", "query"), bits=32),
        )
        return await self._handlers.list_journal(message)

    async def _health(self, _: web.Request) -> Message:
        return await self._handlers.health_check(pb.HealthCheckRequest())


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


def _bounded(value: int, bits: int = 64) -> int:
    if value >= 2**bits:
        raise InvalidArgument("number", f"must be below 2**{bits}")
    return value
