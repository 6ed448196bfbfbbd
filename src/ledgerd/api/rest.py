"""The REST/JSON gateway: BalanceService's operations over HTTP, in this process.

Requests and answers use proto3's JSON mapping (64-bit numbers as text, enums
by name) and go through the same handlers as gRPC. Errors are JSON
``{"code": "<gRPC code name>", "message": "...", "details": [...]}`` with the
HTTP status of the table below; ``details`` holds the google.rpc.Status details
gRPC sends (ErrorInfo, BadRequest) in protobuf's JSON mapping, ``[]`` if none.
Signing uses the same headers and canonical string as gRPC, with
``"{HTTP method} {path and query}"`` in place of the gRPC method and the raw
HTTP body (empty for GET) as the signed bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import structlog
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from ledgerd import metrics
from ledgerd.api.auth import SERVICE_PREFIX, Authenticator
from ledgerd.api.errors import details_json, rich_status, status_of
from ledgerd.api.handlers import Handlers
from ledgerd.api.openapi import DOCUMENT
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


def _error(
    code: grpc.StatusCode, message: str, details: Sequence[dict[str, Any]] = ()
) -> web.Response:
    body = json.dumps({"code": code.name, "message": message, "details": list(details)})
    return web.Response(
        status=HTTP_STATUS.get(code, 500), text=body, content_type="application/json"
    )


def _ledger_error(error: LedgerError) -> web.Response:
    """The answer to a LedgerError: the same status, message and details as over gRPC."""
    status = rich_status(error)
    return _error(status_of(error), status.message, details_json(status))


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
            app.router.add_route(method, path, self._endpoint(rpc, operation))
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
        self, rpc: str, operation: Operation
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
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
                code = grpc.StatusCode.UNAUTHENTICATED
                return _ledger_error(exc)  # the public message and reason only, never which check
            except PermissionDenied as exc:
                metrics.AUTH_FAILURES.labels(reason="scope").inc()
                code = grpc.StatusCode.PERMISSION_DENIED
                return _ledger_error(exc)
            except LedgerError as exc:
                code = status_of(exc)
                return _ledger_error(exc)
            finally:
                metrics.RPC_REQUESTS.labels(method=rpc, code=code.name).inc()
                metrics.RPC_LATENCY.labels(method=rpc).observe(time.perf_counter() - started)

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
        return await self._handlers.change_balance(message, _deadline(request))

    async def _change_balances(self, request: web.Request) -> Message:
        message = _parse(request["body"], pb.ChangeBalancesRequest())
        assert isinstance(message, pb.ChangeBalancesRequest)
        return await self._handlers.change_balances(message, _deadline(request))

    async def _get_change(self, request: web.Request) -> Message:
        message = pb.GetChangeRequest(request_id=request.match_info["request_id"])
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


def _bounded(value: int, bits: int = 64) -> int:
    if value >= 2**bits:
        raise InvalidArgument("number", f"must be below 2**{bits}")
    return value
