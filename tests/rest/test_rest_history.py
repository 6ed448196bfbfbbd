"""Balances as of a moment or version, and statements, over HTTP/JSON (issue 25.2)."""

from __future__ import annotations

import json
from typing import Any

from harness.load import new_user
from rest_support import deposit, field_violations, http, signed_headers

from ledgerd.signing import Signer

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
