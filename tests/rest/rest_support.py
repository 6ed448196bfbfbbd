"""Helpers of the REST tests: JSON over real HTTP, the error details, signed headers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from harness.load import new_request_id

from ledgerd.signing import Signer


def http(
    base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def deposit(user: int, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": new_request_id("rest"),
        "user_id": str(user),
        "currency": "USD",
        "type": "DEPOSIT",
        "amount": amount,
        **extra,
    }


def error_info(error: dict[str, Any]) -> dict[str, Any]:
    (info,) = [d for d in error["details"] if d["@type"].endswith("/google.rpc.ErrorInfo")]
    return info


def field_violations(error: dict[str, Any]) -> list[tuple[str, str]]:
    (bad,) = [d for d in error["details"] if d["@type"].endswith("/google.rpc.BadRequest")]
    return [(v["field"], v["description"]) for v in bad["field_violations"]]


def signed_headers(signer: Signer, method: str, path: str, body: bytes) -> dict[str, str]:
    return dict(signer.headers(f"{method} {path}", body))
