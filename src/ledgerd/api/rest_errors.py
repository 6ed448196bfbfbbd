"""The REST gateway's one error shape, whatever the error's origin.

Every error answer is JSON ``{"code": "<gRPC code name>", "message": "...", "details": [...]}``
where ``details`` holds google.rpc detail messages in protobuf's JSON mapping (with ``@type``).
Domain errors arrive with a gRPC code (``ledgerd.api.errors``) and get the HTTP status of
``HTTP_STATUS_OF_CODE``; errors of the HTTP layer (unknown path, wrong method, body too
large, wrong content type) arrive as aiohttp exceptions with an HTTP status and get the gRPC
code of ``CODE_OF_HTTP_STATUS``; anything unexpected is logged and answered 500 INTERNAL.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
import structlog
from aiohttp import hdrs, web

log = structlog.get_logger(__name__)

# google.rpc's HTTP mapping (google/rpc/code.proto), as grpc-gateway applies it.
HTTP_STATUS_OF_CODE: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# The gRPC code of an HTTP-layer error, which keeps its own HTTP status: a client reads the
# code as it would from gRPC, and HTTP tooling (proxies, retry policies) reads the status.
CODE_OF_HTTP_STATUS: Mapping[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    # grpc-gateway's choice: the route exists, the method is not implemented on it.
    405: grpc.StatusCode.UNIMPLEMENTED,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    # Over the size limit: RESOURCE_EXHAUSTED as gRPC says for an oversized message, but
    # 413 and not 429, so that HTTP clients do not retry what can never fit.
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    414: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    431: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

# Headers of an aiohttp exception that describe its own (text) body, not the error.
_BODY_HEADERS = frozenset({hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING})

Detail = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def code_of_http_status(status: int) -> grpc.StatusCode:
    if status < 400:
        return grpc.StatusCode.OK
    default = grpc.StatusCode.INVALID_ARGUMENT if status < 500 else grpc.StatusCode.INTERNAL
    return CODE_OF_HTTP_STATUS.get(status, default)


def error_response(
    code: grpc.StatusCode,
    message: str,
    details: Sequence[Detail] = (),
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The JSON error answer; ``status`` defaults to the code's HTTP status."""
    body = json.dumps({"code": code.name, "message": message, "details": list(details)})
    return web.Response(
        status=HTTP_STATUS_OF_CODE.get(code, 500) if status is None else status,
        text=body,
        content_type="application/json",
        headers=headers,
    )


def _http_error_message(request: web.Request, error: web.HTTPException) -> str:
    if error.status == 404:
        return f"no such path: {request.path}"
    if error.status == 405:
        allowed = error.headers.get(hdrs.ALLOW, "")
        return f"method {request.method} not allowed on {request.path} (allowed: {allowed})"
    return error.text or error.reason


def http_error_response(request: web.Request, error: web.HTTPException) -> web.Response:
    """An aiohttp exception (its status, and headers such as ``Allow``) in the JSON shape."""
    headers = {k: v for k, v in error.headers.items() if k not in _BODY_HEADERS}
    return error_response(
        code_of_http_status(error.status),
        _http_error_message(request, error),
        status=error.status,
        headers=headers,
    )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers every error escaping the routes in the one JSON shape."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return http_error_response(request, error)
    except Exception:
        # A bug, not a client's mistake: the details stay in the log, not in the answer.
        log.exception("rest_unexpected_error", method=request.method, path=request.path)
        return error_response(grpc.StatusCode.INTERNAL, "internal error")
