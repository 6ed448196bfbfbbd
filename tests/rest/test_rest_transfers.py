"""The exchange operations over HTTP/JSON: transfers, atomic batches, SPEND_FROZEN; their
errors name the field as the REST API spells it; GetTransfer needs read, Transfer write."""

from __future__ import annotations

import json
from typing import Any

from harness.load import new_request_id, new_user
from harness.waiting import wait_until
from rest_support import deposit, error_info, field_violations, http, signed_headers

from ledgerd.signing import Signer


def transfer_body(source: int, destination: int, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": new_request_id("xfer"),
        "from_user_id": str(source),
        "to_user_id": str(destination),
        "currency": "USD",
        "amount": amount,
        **extra,
    }


def funded(rest: str, amount: str, **extra: Any) -> int:
    """A new user with ``amount`` USD applied."""
    user = new_user()
    status, result = http(rest, "POST", "/v1/changes", deposit(user, amount, wait=True, **extra))
    assert (status, result["status"]) == (200, "APPLIED")
    return user


def final_transfer(rest: str, request_id: str) -> dict[str, Any]:
    """GET /v1/transfers/{id} until the transfer is APPLIED or REJECTED."""

    def final() -> dict[str, Any] | None:
        status, answer = http(rest, "GET", f"/v1/transfers/{request_id}")
        assert status == 200, answer
        transfer: dict[str, Any] = answer["transfer"]
        return transfer if transfer["status"] in ("APPLIED", "REJECTED") else None

    return wait_until(final, 30, f"transfer {request_id} final")


def available(rest: str, user: int) -> str:
    status, answer = http(rest, "GET", f"/v1/balances/{user}?currency=USD")
    assert status == 200
    return str(answer["balances"][0]["available"])


def last_entry(rest: str, user: int) -> dict[str, Any]:
    status, journal = http(rest, "GET", f"/v1/journal/{user}/USD")
    assert status == 200
    entry: dict[str, Any] = journal["entries"][-1]
    return entry


def test_a_transfer_moves_funds_and_both_journals_name_it(rest: str) -> None:
    """POST /v1/transfers, then GET it until APPLIED: both balances moved; each journal entry
    names the transfer and the other user."""
    source, destination = funded(rest, "10"), new_user()
    body = transfer_body(source, destination, "4.5", memo="rent", wait=True)
    status, answer = http(rest, "POST", "/v1/transfers", body)
    assert status == 200 and answer["transfer"]["request_id"] == body["request_id"]
    transfer = final_transfer(rest, body["request_id"])
    assert transfer["status"] == "APPLIED" and transfer["debited"] is True
    assert (transfer["from_user_id"], transfer["to_user_id"], transfer["amount"]) == (
        str(source),
        str(destination),
        "4.5",
    )
    assert (available(rest, source), available(rest, destination)) == ("5.5", "4.5")
    debit, credit = last_entry(rest, source), last_entry(rest, destination)
    assert (debit["type"], debit["transfer_id"], debit["counterparty_user_id"]) == (
        "TRANSFER_OUT",
        body["request_id"],
        str(destination),
    )
    assert (credit["type"], credit["transfer_id"], credit["counterparty_user_id"]) == (
        "TRANSFER_IN",
        body["request_id"],
        str(source),
    )
    assert debit["memo"] == credit["memo"] == "rent"


def test_a_transfer_beyond_the_balance_is_rejected_and_moves_nothing(rest: str) -> None:
    """The debit is refused (INSUFFICIENT_AVAILABLE): REJECTED, neither balance moves."""
    source, destination = funded(rest, "1"), new_user()
    body = transfer_body(source, destination, "2")
    assert http(rest, "POST", "/v1/transfers", body)[0] == 200
    transfer = final_transfer(rest, body["request_id"])
    assert (transfer["status"], transfer["reject_reason"]) == ("REJECTED", "INSUFFICIENT_AVAILABLE")
    assert transfer.get("debited", False) is False
    assert available(rest, source) == "1"


def test_transfer_fields_are_named_when_bad(rest: str) -> None:
    """Malformed JSON values, unknown fields and invalid values are 400 naming the field."""
    source = new_user()
    cases = [
        ({"from_user_id": "x"}, "from_user_id"),
        ({"amount": "1."}, "amount"),
        ({"currency": "usd"}, "currency"),
        ({"to_user_id": str(source)}, "to_user_id"),
        ({"from_frozen": "yes"}, "from_frozen"),
        ({"fee": "1"}, "fee"),
    ]
    for change, field in cases:
        body = {**transfer_body(source, new_user(), "1"), **change}
        status, error = http(rest, "POST", "/v1/transfers", body)
        assert (status, error["code"]) == (400, "INVALID_ARGUMENT"), (change, error)
        assert error["message"].startswith(f"{field}:"), (change, error)
        assert field_violations(error)[0][0] == field


def test_unknown_and_conflicting_transfers(rest: str) -> None:
    """GET of an unknown transfer is 404; the same id with another amount is 409; the same
    request again is a duplicate."""
    status, error = http(rest, "GET", f"/v1/transfers/{new_request_id()}")
    assert (status, error["code"]) == (404, "NOT_FOUND")
    body = transfer_body(funded(rest, "5"), new_user(), "1")
    assert http(rest, "POST", "/v1/transfers", body)[0] == 200
    status, again = http(rest, "POST", "/v1/transfers", body)
    assert status == 200 and again["transfer"]["duplicate"] is True
    status, error = http(rest, "POST", "/v1/transfers", {**body, "amount": "2"})
    assert (status, error["code"]) == (409, "ALREADY_EXISTS")
    assert error_info(error)["metadata"]["request_id"] == body["request_id"]


def test_spend_frozen_settles_a_hold(rest: str) -> None:
    """FREEZE 4 then SPEND_FROZEN 3: frozen 1, available untouched by the spend."""
    user = funded(rest, "10")
    for kind, amount in (("FREEZE", "4"), ("SPEND_FROZEN", "3")):
        status, result = http(
            rest, "POST", "/v1/changes", deposit(user, amount, type=kind, wait=True)
        )
        assert (status, result["status"]) == (200, "APPLIED"), result
    assert (result["balance"]["available"], result["balance"]["frozen"]) == ("6", "1")
    assert last_entry(rest, user)["type"] == "SPEND_FROZEN"


def test_an_atomic_batch_applies_all_or_none(rest: str) -> None:
    """Atomic: one leg short rejects every leg with its reason and changes nothing; a batch
    that fits applies every leg in order."""
    user = funded(rest, "5")
    legs = [deposit(user, "3", type="WITHDRAW"), deposit(user, "3", type="WITHDRAW")]
    status, answer = http(
        rest, "POST", "/v1/changes:batch", {"changes": legs, "atomic": True, "wait": True}
    )
    assert status == 200
    assert [(r["status"], r["reject_reason"]) for r in answer["results"]] == [
        ("REJECTED", "INSUFFICIENT_AVAILABLE")
    ] * 2
    assert available(rest, user) == "5"
    legs = [deposit(user, "3", type="WITHDRAW"), deposit(user, "1", type="FREEZE")]
    status, answer = http(
        rest, "POST", "/v1/changes:batch", {"changes": legs, "atomic": True, "wait": True}
    )
    assert status == 200 and [r["status"] for r in answer["results"]] == ["APPLIED"] * 2
    assert available(rest, user) == "1"


def test_an_atomic_batch_of_two_users_is_invalid(rest: str) -> None:
    """Mixed users in an atomic batch: 400 INVALID_ARGUMENT naming a user_id; nothing stored."""
    first = deposit(new_user(), "1")
    legs = [first, deposit(new_user(), "1")]
    status, error = http(rest, "POST", "/v1/changes:batch", {"changes": legs, "atomic": True})
    assert (status, error["code"]) == (400, "INVALID_ARGUMENT")
    assert "user_id" in field_violations(error)[0][0]
    assert http(rest, "GET", f"/v1/changes/{first['request_id']}")[0] == 404


def test_a_client_may_not_send_a_transfer_leg_type(rest: str) -> None:
    """TRANSFER_IN in a change is 400 naming `type`."""
    status, error = http(rest, "POST", "/v1/changes", deposit(new_user(), "1", type="TRANSFER_IN"))
    assert (status, error["code"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith("type:")


def test_get_transfer_needs_read_and_transfer_needs_write(signed_rest: str) -> None:
    """A read-only key may GET a transfer (404 for an unknown one, not 403) and may not POST."""
    reader = Signer("reader", "rest-read")
    path = f"/v1/transfers/{new_request_id()}"
    status, error = http(signed_rest, "GET", path, headers=signed_headers(reader, "GET", path, b""))
    assert (status, error["code"]) == (404, "NOT_FOUND")
    body = transfer_body(new_user(), new_user(), "1")
    raw = json.dumps(body).encode()
    status, error = http(
        signed_rest,
        "POST",
        "/v1/transfers",
        body,
        headers=signed_headers(reader, "POST", "/v1/transfers", raw),
    )
    assert (status, error["code"]) == (403, "PERMISSION_DENIED")
    assert error_info(error)["metadata"] == {"key_id": "reader", "scope": "write"}
