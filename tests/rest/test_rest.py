"""BalanceService over HTTP/JSON: same operations, same errors, same signing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from harness.load import new_request_id, new_user
from rest_support import deposit, error_info, field_violations, http, signed_headers

from ledgerd.signing import Signer


def test_deposit_with_wait_then_read_balance_and_journal(rest: str) -> None:
    """POST /v1/changes applies; GET balance and journal show it."""
    user = new_user()
    status, result = http(rest, "POST", "/v1/changes", deposit(user, "12.5", wait=True, memo="hi"))
    assert status == 200 and result["status"] == "APPLIED"
    assert result["balance"]["available"] == "12.5"
    status, balances = http(rest, "GET", f"/v1/balances/{user}?currency=USD")
    assert status == 200 and balances["balances"][0]["available"] == "12.5"
    status, journal = http(rest, "GET", f"/v1/journal/{user}/USD")
    assert status == 200 and [e["memo"] for e in journal["entries"]] == ["hi"]
    status, health = http(rest, "GET", "/v1/health")
    assert status == 200 and health["status"] == "SERVING"


def test_errors_map_to_http_statuses_with_the_field_named(rest: str) -> None:
    """Malformed field → 400 naming it; conflicting id → 409; unknown request → 404."""
    user = new_user()
    status, error = http(rest, "POST", "/v1/changes", deposit(user, "1."))
    assert (status, error["code"]) == (400, "INVALID_ARGUMENT") and error["message"].startswith(
        "amount:"
    )
    change = deposit(user, "1", wait=True)
    assert http(rest, "POST", "/v1/changes", change)[0] == 200
    status, again = http(rest, "POST", "/v1/changes", change)
    assert status == 200 and again["duplicate"] is True
    status, error = http(rest, "POST", "/v1/changes", {**change, "amount": "2"})
    assert (status, error["code"]) == (409, "ALREADY_EXISTS")
    status, error = http(rest, "GET", f"/v1/changes/{new_request_id()}")
    assert (status, error["code"]) == (404, "NOT_FOUND")
    status, error = http(rest, "POST", "/v1/changes", {"request_id": "x", "unknown_field": 1})
    assert status == 400


def test_batch_with_an_invalid_item_stores_nothing(rest: str) -> None:
    """A batch with a bad item gets 400 naming changes[i]; the good item is not stored."""
    user = new_user()
    good, bad = deposit(user, "1"), deposit(user, "-1")
    status, error = http(rest, "POST", "/v1/changes:batch", {"changes": [good, bad]})
    assert status == 400 and error["message"].startswith("changes[1].amount")
    assert http(rest, "GET", f"/v1/changes/{good['request_id']}")[0] == 404


def test_invalid_fields_come_with_the_same_details_as_grpc(rest: str) -> None:
    """400 bodies list every bad field (BadRequest, snake_case names) beside an ErrorInfo."""
    status, error = http(
        rest, "POST", "/v1/changes", deposit(0, "-1", currency="usd", type="WITHDRAW")
    )
    assert (status, error["code"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith("user_id: ")
    assert [field for field, _ in field_violations(error)] == ["user_id", "currency", "amount"]
    assert error_info(error) == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "INVALID_FIELD",
        "domain": "ledgerd",
        "metadata": {"field_violations": "3"},
    }


def test_a_batch_error_names_every_bad_item(rest: str) -> None:
    """Bad items at 0 and 5 of a REST batch are both in the details."""
    user = new_user()
    changes = [deposit(user, "1") for _ in range(6)]
    changes[0]["amount"], changes[5]["currency"] = "0", "usd"
    status, error = http(rest, "POST", "/v1/changes:batch", {"changes": changes})
    assert status == 400
    assert [field for field, _ in field_violations(error)] == [
        "changes[0].amount",
        "changes[5].currency",
    ]


def test_conflict_and_not_found_carry_their_reasons(rest: str) -> None:
    """409 → REQUEST_CONFLICT with the request_id; 404 → REQUEST_NOT_FOUND."""
    change = deposit(new_user(), "1")
    assert http(rest, "POST", "/v1/changes", change)[0] == 200
    status, error = http(rest, "POST", "/v1/changes", {**change, "amount": "2"})
    assert status == 409 and error_info(error)["reason"] == "REQUEST_CONFLICT"
    assert error_info(error)["metadata"]["request_id"] == change["request_id"]
    request_id = new_request_id()
    status, error = http(rest, "GET", f"/v1/changes/{request_id}")
    assert status == 404 and error_info(error)["reason"] == "REQUEST_NOT_FOUND"
    assert error_info(error)["metadata"] == {"request_id": request_id}


def test_signing_applies_to_rest_with_the_same_scheme(signed_rest: str) -> None:
    """Unsigned → 401; signed writer → 200; read-only key writing → 403."""
    user = new_user()
    body = json.dumps(deposit(user, "3", wait=True)).encode()
    status, unsigned = http(signed_rest, "POST", "/v1/changes", json.loads(body))
    assert status == 401
    assert error_info(unsigned)["reason"] == "SIGNATURE_REJECTED"
    assert "metadata" not in error_info(unsigned)  # never which check failed

    def post(signer: Signer) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            signed_rest + "/v1/changes",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                **signed_headers(signer, "POST", "/v1/changes", body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, denied = post(Signer("reader", "rest-read"))
    assert status == 403
    assert error_info(denied)["reason"] == "SCOPE_MISSING"
    assert error_info(denied)["metadata"] == {"key_id": "reader", "scope": "write"}
    status, result = post(Signer("writer", "rest-secret"))
    assert status == 200 and result["status"] == "APPLIED"
    path = f"/v1/balances/{user}?currency=USD"
    status, balances = http(
        signed_rest,
        "GET",
        path,
        headers=signed_headers(Signer("reader", "rest-read"), "GET", path, b""),
    )
    assert status == 200 and balances["balances"][0]["available"] == "3"


# -- balances as of a moment or version, and statements (issue 25.2); in this module to
# share its servers.
WRITER = Signer("writer", "rest-secret")
READER = Signer("reader", "rest-read")


def test_as_of_and_statement_routes_answer_a_read_only_key(signed_rest: str) -> None:
    """Two deposits, then with the `read` scope only: the balance as of the first one's
    moment and version, and the statement of both, paged by page_token."""

    def call(method: str, path: str, signer: Signer, body: Any = None) -> dict[str, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        status, answer = http(
            signed_rest, method, path, body, signed_headers(signer, method, path, raw)
        )
        assert status == 200, answer
        return answer

    user = new_user()
    for amount in ("2", "3.5"):
        assert call("POST", "/v1/changes", WRITER, deposit(user, amount, wait=True))["status"] == (
            "APPLIED"
        )
    entries = call("GET", f"/v1/journal/{user}/USD", READER)["entries"]
    first_ms = entries[0]["applied_at_unix_ms"]
    # As of the first one's moment: the first, unless both were stamped in the same ms.
    both_at_once = entries[1]["applied_at_unix_ms"] == first_ms
    at_moment = call("GET", f"/v1/balances/{user}?currency=USD&as_of_unix_ms={first_ms}", READER)
    at_version = call("GET", f"/v1/balances/{user}?currency=USD&as_of_version=1", READER)
    expected = [("2", "5.5") if both_at_once else ("1", "2"), ("1", "2")]
    for answer, (version, available) in zip((at_moment, at_version), expected, strict=True):
        assert [(b["version"], b["available"]) for b in answer["balances"]] == [
            (version, available)
        ]
        assert answer["as_of"]["applied_at_unix_ms"] == [
            entries[int(version) - 1]["applied_at_unix_ms"]
        ]
    route = f"/v1/statements/{user}/USD?from_unix_ms=0&to_unix_ms=9223372036854775807&page_size=1"
    first = call("GET", route, READER)
    second = call("GET", f"{route}&page_token={first['next_page_token']}", READER)
    assert [e["amount"] for e in first["entries"] + second["entries"]] == ["2", "3.5"]
    assert "next_page_token" not in second
    assert "opening" not in first or first["opening"].get("version") is None  # zeros: absent
    assert second["closing"] == {"user_id": str(user), "currency": "USD", "available": "5.5",
                                 "frozen": "0", "version": "2"}  # fmt: skip


def test_bad_as_of_and_statement_parameters_are_400_naming_the_field(rest: str) -> None:
    """Both as-of parameters, an empty range, a page token that is not one."""
    user = new_user()
    for path, field in (
        (f"/v1/balances/{user}?currency=USD&as_of_unix_ms=1&as_of_version=1", "as_of_version"),
        (f"/v1/balances/{user}?as_of_version=1", "currency"),
        (f"/v1/balances/{user}?currency=USD&as_of_unix_ms=x", "as_of_unix_ms"),
        (f"/v1/statements/{user}/USD?from_unix_ms=7&to_unix_ms=7", "to_unix_ms"),
        (f"/v1/statements/{user}/USD?to_unix_ms=7&page_token=nope", "page_token"),
    ):
        status, error = http(rest, "GET", path)
        assert (status, error["code"]) == (400, "INVALID_ARGUMENT"), (path, error)
        assert [f for f, _ in field_violations(error)] == [field], path
