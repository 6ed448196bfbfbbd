"""Every error of the gateway, whatever its origin, is JSON {code, message, details} over
real HTTP: the router's 404 and 405, aiohttp's body limit, the content type, the JSON
decoder, path integers and the service's own validation."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from harness.load import new_request_id, new_user
from harness.waiting import wait_until

from ledgerd.api.rest import MAX_BODY_BYTES

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def send(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of one request, exactly as given (no defaults added)."""
    headers = {} if content_type is None or body is None else {"Content-Type": content_type}
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def error_of(answer: tuple[int, dict[str, str], dict[str, Any]]) -> tuple[int, str, str]:
    """(status, code, message) after checking the one error shape and its content type."""
    status, headers, body = answer
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"code", "message", "details"} and isinstance(body["details"], list)
    return status, body["code"], body["message"]


def violations(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The field violations of the one BadRequest detail (beside it, ErrorInfo)."""
    (detail,) = [detail for detail in body["details"] if detail["@type"] == BAD_REQUEST]
    return [(v["field"], v["description"]) for v in detail["field_violations"]]


def test_unknown_path_is_404_not_found(rest: str) -> None:
    """The router's 404 is JSON NOT_FOUND naming the path."""
    status, code, message = error_of(send(rest, "GET", "/v1/nothing-here"))
    assert (status, code) == (404, "NOT_FOUND") and "/v1/nothing-here" in message


def test_wrong_method_is_405_with_allow(rest: str) -> None:
    """A method the path does not serve is 405 UNIMPLEMENTED and keeps the Allow header."""
    answer = send(rest, "DELETE", "/v1/changes")
    status, code, message = error_of(answer)
    assert (status, code) == (405, "UNIMPLEMENTED") and "DELETE" in message
    assert answer[1]["Allow"] == "POST"


def test_body_over_the_limit_is_413_resource_exhausted(rest: str) -> None:
    """One byte over 16 MiB: 413 with RESOURCE_EXHAUSTED, the code gRPC gives."""
    body = b" " * (MAX_BODY_BYTES + 1)
    status, code, message = error_of(send(rest, "POST", "/v1/changes", body))
    assert (status, code) == (413, "RESOURCE_EXHAUSTED") and str(MAX_BODY_BYTES) in message


def test_a_body_that_is_not_json_is_415(rest: str) -> None:
    """text/plain, or no Content-Type at all, is refused naming the header."""
    body = b'{"request_id": "x"}'
    for content_type in ("text/plain", None):
        status, code, message = error_of(
            send(rest, "POST", "/v1/changes", body, content_type=content_type)
        )
        assert (status, code) == (415, "INVALID_ARGUMENT") and message.startswith("Content-Type:")


def test_json_with_charset_is_accepted(rest: str) -> None:
    """application/json; charset=utf-8 is JSON."""
    body = json.dumps({"changes": []}).encode()
    answer = send(rest, "POST", "/v1/changes:batch", body, "application/json; charset=utf-8")
    assert answer[0] == 200


def test_undecodable_json_names_the_body(rest: str) -> None:
    """Broken JSON: 400 on field ``body`` with a BadRequest detail, no protobuf text."""
    answer = send(rest, "POST", "/v1/changes", b'{"amount": ')
    status, code, message = error_of(answer)
    assert (status, code) == (400, "INVALID_ARGUMENT") and message.startswith(
        "body: not valid JSON"
    )
    assert violations(answer[2])[0][0] == "body"


def test_an_ill_typed_field_is_named_in_snake_case(rest: str) -> None:
    """``userId: "abc"`` (camelCase on input) is reported as ``user_id``."""
    body = json.dumps({"request_id": "r", "userId": "abc"}).encode()
    answer = send(rest, "POST", "/v1/changes", body)
    status, code, message = error_of(answer)
    assert (status, code) == (400, "INVALID_ARGUMENT") and message.startswith("user_id: ")
    assert violations(answer[2])[0][0] == "user_id"


def test_an_unknown_field_is_rejected_by_name(rest: str) -> None:
    """A misspelt field is an error naming it, not silently dropped."""
    body = json.dumps({"request_id": "r", "ammount": "1"}).encode()
    assert error_of(send(rest, "POST", "/v1/changes", body))[2].startswith("ammount: unknown")


def test_a_validation_error_carries_a_bad_request_detail(rest: str) -> None:
    """The service's own field check (amount) comes with google.rpc.BadRequest."""
    body = json.dumps(
        {
            "request_id": "r-bad",
            "user_id": "1",
            "currency": "USD",
            "type": "DEPOSIT",
            "amount": "1.",
        }
    ).encode()
    answer = send(rest, "POST", "/v1/changes", body)
    assert error_of(answer)[:2] == (400, "INVALID_ARGUMENT")
    assert [field for field, _ in violations(answer[2])] == ["amount"]


def test_an_oversized_user_id_in_the_path_names_user_id(rest: str) -> None:
    """2**64 in the path: 400 naming user_id (not ``number``)."""
    answer = send(rest, "GET", f"/v1/balances/{2**64}")
    status, code, message = error_of(answer)
    assert (status, code) == (400, "INVALID_ARGUMENT") and message.startswith("user_id: ")
    assert violations(answer[2])[0][0] == "user_id"


def test_a_bad_query_integer_names_its_parameter(rest: str) -> None:
    """A non-numeric limit is 400 naming limit."""
    status, _, message = error_of(send(rest, "GET", f"/v1/journal/{new_user()}/USD?limit=ten"))
    assert status == 400 and message.startswith("limit: ")


def test_a_20_digit_user_id_is_accepted(rest: str) -> None:
    """2**64-1 is a valid user_id in the path and in a body."""
    user = str(2**64 - 1)
    change = {"request_id": new_request_id("max"), "user_id": user, "currency": "USD",
              "type": "DEPOSIT", "amount": "2", "wait": True}  # fmt: skip
    status, _, result = send(rest, "POST", "/v1/changes", json.dumps(change).encode())
    assert status == 200 and result["balance"]["user_id"] == user
    status, _, balances = send(rest, "GET", f"/v1/balances/{user}?currency=USD")
    assert status == 200 and balances["balances"][0]["available"] == "2"
    status, _, journal = send(rest, "GET", f"/v1/journal/{user}/USD")
    assert status == 200 and journal["entries"][0]["user_id"] == user


def test_calls_over_the_concurrency_limit_are_429_resource_exhausted(one_call_rest: str) -> None:
    """LEDGERD_MAX_CONCURRENT_RPCS holds for REST: with one call in progress (its body
    half sent), the next is 429 RESOURCE_EXHAUSTED; once it ends, calls pass again."""
    body = json.dumps({"changes": []}).encode()
    url = urllib.parse.urlsplit(one_call_rest)
    with socket.create_connection((url.hostname, url.port), timeout=30) as held:
        held.sendall(
            b"POST /v1/changes:batch HTTP/1.1\r\nHost: ledgerd\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:1]
        )

        def refused() -> tuple[int, str, str] | None:
            answer = error_of(send(one_call_rest, "GET", "/v1/health"))
            return answer if answer[0] == 429 else None

        _, code, message = wait_until(refused, 30, "a second call refused")
        assert code == "RESOURCE_EXHAUSTED" and "(limit 1)" in message
        held.sendall(body[1:])
        assert held.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    assert send(one_call_rest, "GET", "/v1/health")[0] == 200
