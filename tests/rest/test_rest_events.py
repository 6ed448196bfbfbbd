"""GET /v1/events: the change events as NDJSON, through the gateway of a real server."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from harness.load import new_user
from test_rest import deposit, http, signed_headers

from ledgerd.signing import Signer


def event_lines(base: str, path: str, headers: dict[str, str] | None = None) -> list[Any]:
    request = urllib.request.Request(base + path, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in answer.read().splitlines()]


def test_events_come_one_json_object_per_line_as_they_are_published(rest: str) -> None:
    """Once the headers are in, every change applied later arrives as one line, in order."""
    user = new_user()
    with urllib.request.urlopen(rest + "/v1/events", timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("application/x-ndjson")
        for amount in ("1", "2"):
            status, _ = http(rest, "POST", "/v1/changes", deposit(user, amount, wait=True))
            assert status == 200
        mine: list[Any] = []
        while len(mine) < 2:
            event = json.loads(answer.readline())
            if event["entry"]["user_id"] == str(user):
                mine.append(event["entry"])
    assert [(e["version"], e["amount"]) for e in mine] == [("1", "1"), ("2", "2")]


def test_a_limit_ends_the_stream(rest: str) -> None:
    """from_beginning=true&limit=1: exactly one line, then the answer ends."""
    status, _ = http(rest, "POST", "/v1/changes", deposit(new_user(), "1", wait=True))
    assert status == 200
    (event,) = event_lines(rest, "/v1/events?from_beginning=true&limit=1")
    assert set(event) == {"entry", "partition", "sequence"}


def test_a_malformed_parameter_is_invalid_argument_naming_it(rest: str) -> None:
    """from_beginning must be a boolean, limit an integer: 400 with the field named."""
    for query, field in (("from_beginning=maybe", "from_beginning"), ("limit=-1", "limit")):
        status, error = http(rest, "GET", f"/v1/events?{query}")
        assert status == 400
        assert error["code"] == "INVALID_ARGUMENT"
        assert error["message"].startswith(field + ":")


def test_signed_events_need_the_read_scope(signed_rest: str) -> None:
    """Unsigned → 401; a read-only key → 200."""
    path = "/v1/events?from_beginning=true&limit=1"
    status, _ = http(signed_rest, "GET", path)
    assert status == 401
    user = new_user()
    body = json.dumps(deposit(user, "1", wait=True)).encode()
    request = urllib.request.Request(
        signed_rest + "/v1/changes",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            **signed_headers(Signer("writer", "rest-secret"), "POST", "/v1/changes", body),
        },
    )
    with urllib.request.urlopen(request, timeout=15) as answer:
        assert answer.status == 200
    headers = signed_headers(Signer("reader", "rest-read"), "GET", path, b"")
    (event,) = event_lines(signed_rest, path, headers)
    assert event["entry"]["type"] == "DEPOSIT"
