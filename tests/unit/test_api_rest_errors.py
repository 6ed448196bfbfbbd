"""The REST gateway answers every error in one JSON shape: {code, message, details}."""

from __future__ import annotations

import asyncio
import json
from typing import Any, NoReturn

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from structlog.testing import capture_logs

from ledgerd.api.rest_errors import (
    CODE_OF_HTTP_STATUS,
    HTTP_STATUS_OF_CODE,
    error_response,
    json_errors,
)


def through_middleware(error: BaseException) -> web.Response:
    async def handler(_: web.Request) -> NoReturn:
        raise error

    answer = asyncio.run(json_errors(make_mocked_request("PUT", "/v1/changes"), handler))
    assert isinstance(answer, web.Response)
    return answer


def body_of(answer: web.Response) -> dict[str, Any]:
    assert answer.content_type == "application/json"
    assert isinstance(answer.text, str)
    body: dict[str, Any] = json.loads(answer.text)
    assert set(body) == {"code", "message", "details"}
    return body


def test_an_unexpected_exception_is_500_internal_and_logged() -> None:
    """A bug answers INTERNAL in the JSON shape; its text goes to the log, not the client."""
    with capture_logs() as logs:
        answer = through_middleware(RuntimeError("secret table name"))
    body = body_of(answer)
    assert [(e["event"], e["log_level"], e["path"]) for e in logs] == [
        ("rest_unexpected_error", "error", "/v1/changes")
    ]
    assert answer.status == 500
    assert body == {"code": "INTERNAL", "message": "internal error", "details": []}


def test_405_keeps_its_allow_header() -> None:
    """Wrong method: 405 UNIMPLEMENTED, the Allow header kept, the method named."""
    answer = through_middleware(web.HTTPMethodNotAllowed("PUT", ["POST"]))
    body = body_of(answer)
    assert (answer.status, body["code"]) == (405, "UNIMPLEMENTED")
    assert answer.headers["Allow"] == "POST"
    assert "PUT" in body["message"]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (web.HTTPNotFound(), 404, "NOT_FOUND"),
        (web.HTTPRequestEntityTooLarge(16, 17), 413, "RESOURCE_EXHAUSTED"),
        (web.HTTPUnsupportedMediaType(text="Content-Type: missing"), 415, "INVALID_ARGUMENT"),
        (web.HTTPBadRequest(), 400, "INVALID_ARGUMENT"),
        (web.HTTPGone(), 410, "INVALID_ARGUMENT"),
        (web.HTTPBadGateway(), 502, "INTERNAL"),
    ],
)
def test_aiohttp_errors_keep_their_status_and_get_a_grpc_code(
    error: web.HTTPException, status: int, code: str
) -> None:
    """Every aiohttp HTTP error is answered as JSON with its own status."""
    answer = through_middleware(error)
    assert (answer.status, body_of(answer)["code"]) == (status, code)


def test_success_passes_through_untouched() -> None:
    """The middleware only rewrites errors."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    answer = asyncio.run(json_errors(make_mocked_request("GET", "/"), handler))
    assert isinstance(answer, web.Response) and answer.text == "ok"


def test_every_grpc_code_has_an_http_status() -> None:
    """A new code cannot silently fall back to 500."""
    assert set(HTTP_STATUS_OF_CODE) == set(grpc.StatusCode)


def test_the_http_table_only_names_error_statuses() -> None:
    """CODE_OF_HTTP_STATUS maps errors, never a success status to a code."""
    assert all(status >= 400 for status in CODE_OF_HTTP_STATUS)
    assert grpc.StatusCode.OK not in CODE_OF_HTTP_STATUS.values()


def test_error_response_takes_the_status_of_its_code() -> None:
    """RESOURCE_EXHAUSTED from the service layer (overload) is 429."""
    answer = error_response(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded")
    assert (answer.status, body_of(answer)["details"]) == (429, [])
