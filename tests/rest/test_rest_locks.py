"""Locked accounts over HTTP/JSON: POST /v1/locks and /v1/unlocks, the lock in GET
/v1/balances, and ACCOUNT_LOCKED on a change."""

from __future__ import annotations

import json

from harness.load import new_request_id, new_user
from rest_support import deposit, error_info, http, signed_headers

from ledgerd.signing import Signer


def test_a_lock_over_rest_refuses_a_withdrawal_and_shows_in_the_balance(rest: str) -> None:
    """Lock debits, a withdrawal is REJECTED (ACCOUNT_LOCKED), GET shows the lock; unlock."""
    user = new_user()
    assert http(rest, "POST", "/v1/changes", deposit(user, "5", wait=True))[0] == 200
    lock = {
        "request_id": new_request_id("lock"), "user_id": str(user), "currency": "USD",
        "lock": "ACCOUNT_LOCK_DEBITS", "memo": "review", "wait": True,
    }  # fmt: skip
    status, answer = http(rest, "POST", "/v1/locks", lock)
    assert (status, answer["result"]["status"]) == (200, "APPLIED")
    assert answer["result"]["balance"]["lock"] == "ACCOUNT_LOCK_DEBITS"
    withdrawal = {**deposit(user, "1", wait=True), "type": "WITHDRAW"}
    status, result = http(rest, "POST", "/v1/changes", withdrawal)
    assert (status, result["status"], result["reject_reason"]) == (
        200, "REJECTED", "ACCOUNT_LOCKED",
    )  # fmt: skip
    status, balances = http(rest, "GET", f"/v1/balances/{user}?currency=USD")
    assert balances["balances"][0]["lock"] == "ACCOUNT_LOCK_DEBITS"
    unlock = {"request_id": new_request_id("unlock"), "user_id": str(user), "currency": "USD"}
    status, answer = http(rest, "POST", "/v1/unlocks", {**unlock, "wait": True})
    assert (status, answer["result"]["status"]) == (200, "APPLIED")


def test_post_locks_needs_the_admin_scope_and_names_the_key(signed_rest: str) -> None:
    """POST /v1/locks: a write key gets PERMISSION_DENIED; an admin key's lock applies and
    its journal entry names the key as the actor."""
    user = new_user()
    body = {
        "request_id": new_request_id("lock"), "user_id": str(user), "currency": "USD",
        "lock": "ACCOUNT_LOCK_FULL", "wait": True,
    }  # fmt: skip
    raw = json.dumps(body).encode()
    writer, ops = Signer("writer", "rest-secret"), Signer("ops", "rest-ops")
    headers = signed_headers(writer, "POST", "/v1/locks", raw)
    status, error = http(signed_rest, "POST", "/v1/locks", body, headers=headers)
    assert (status, error["code"]) == (403, "PERMISSION_DENIED")
    assert error_info(error)["metadata"] == {"key_id": "writer", "scope": "admin"}
    headers = signed_headers(ops, "POST", "/v1/locks", raw)
    status, answer = http(signed_rest, "POST", "/v1/locks", body, headers=headers)
    assert (status, answer["result"]["status"]) == (200, "APPLIED")
    path = f"/v1/journal/{user}/USD"
    status, journal = http(signed_rest, "GET", path, headers=signed_headers(ops, "GET", path, b""))
    (entry,) = journal["entries"]
    assert (entry["type"], entry["actor"], entry["lock_after"]) == (
        "LOCK_FULL", "ops", "ACCOUNT_LOCK_FULL",
    )  # fmt: skip
