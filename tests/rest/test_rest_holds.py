"""Holds over HTTP/JSON: a HOLD, a capture and a release through POST /v1/changes, the hold
in GET /v1/holds/{user_id}/{hold_id}, and NOT_FOUND for a hold that is not there."""

from __future__ import annotations

from harness.load import new_request_id, new_user
from rest_support import deposit, http


def test_a_hold_over_rest_is_captured_released_and_read(rest: str) -> None:
    """HOLD 3 of 5 (timeout_ms), capture 1, release: GET shows 3, 1 captured, 0 remaining,
    RELEASED, and the expiry; an unknown hold is 404 NOT_FOUND."""
    user = new_user()
    assert http(rest, "POST", "/v1/changes", deposit(user, "5", wait=True))[0] == 200
    hold_id = new_request_id("hold")
    hold = {**deposit(user, "3", wait=True), "request_id": hold_id, "type": "HOLD"}
    status, held = http(rest, "POST", "/v1/changes", {**hold, "timeout_ms": 60000})
    assert (status, held["status"], held["balance"]["frozen"]) == (200, "APPLIED", "3")
    capture = {
        **deposit(user, "1", wait=True), "type": "HOLD_CAPTURE", "hold_id": hold_id,
    }  # fmt: skip
    status, captured = http(rest, "POST", "/v1/changes", capture)
    assert (status, captured["status"]) == (200, "APPLIED")
    release = {
        "request_id": new_request_id("release"), "user_id": str(user), "currency": "USD",
        "type": "HOLD_RELEASE", "hold_id": hold_id, "wait": True,
    }  # fmt: skip
    status, released = http(rest, "POST", "/v1/changes", release)
    assert (status, released["balance"]["available"]) == (200, "4")
    status, answer = http(rest, "GET", f"/v1/holds/{user}/{hold_id}")
    got = answer["hold"]
    assert (status, got["amount"], got["captured"], got["remaining"], got["state"]) == (
        200, "3", "1", "0", "HOLD_STATE_RELEASED",
    )  # fmt: skip
    assert int(got["expires_at_unix_ms"]) > 0
    status, missing = http(rest, "GET", f"/v1/holds/{user}/no-such-hold")
    assert (status, missing["code"]) == (404, "NOT_FOUND")
