"""The OpenAPI 3 document of the REST/JSON gateway (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

_UINT64 = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "unsigned 64-bit, as text"}
_USER_ID = {
    "type": "string",
    "pattern": "^[1-9][0-9]{0,18}$",
    "description": "1 to 2**64-1, as text (also accepted as a JSON number)",
}
_AMOUNT = {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$"}
# A request amount: the canonical form, and not zero.
_POSITIVE_AMOUNT = {
    "type": "string",
    "pattern": r"^(?=.*[1-9])(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$",
}
_REQUEST_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}
_CURRENCY = {"type": "string", "pattern": "^[A-Z0-9]{1,16}$"}
_CHANGE_TYPE = {"type": "string", "enum": ["DEPOSIT", "WITHDRAW", "FREEZE", "UNFREEZE"]}
_STATUS = {"type": "string", "enum": ["PENDING", "SENT", "APPLIED", "REJECTED", "FAILED"]}
_REASON = {
    "type": "string",
    "enum": ["INSUFFICIENT_AVAILABLE", "INSUFFICIENT_FROZEN", "AMOUNT_OVERFLOW"],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_ERRORS = {
    str(status): {"description": text, **_json(_ref("Error"))}
    for status, text in (
        (400, "a malformed field (the message names it)"),
        (401, "missing or bad signature"),
        (403, "a valid key outside its scopes"),
        (404, "unknown request"),
        (409, "request_id reused with different fields"),
        (429, "overloaded"),
        (503, "a backend is unavailable; retry with the same request_id"),
    )
}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    return {
        "200": {"description": "OK", **_json(ok)},
        **{c: _ERRORS[c] for c in map(str, codes)},
    }


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "ledgerd REST/JSON gateway",
        "version": "1.0.0",
        "description": "The operations of ledgerd.v1.BalanceService over HTTP/JSON. Numbers of"
        " 64 bits travel as text, enums by name, as in proto3's JSON mapping.",
    },
    "paths": {
        "/v1/balances/{user_id}": {
            "get": {
                "operationId": "GetBalance",
                "parameters": [
                    _path_param("user_id", {"type": "integer", "minimum": 1, "maximum": 2**64 - 1}),
                    _query_param("currency", _CURRENCY),
                ],
                "responses": _responses(_ref("Balances"), 400, 401, 403, 503),
            }
        },
        "/v1/changes": {
            "post": {
                "operationId": "ChangeBalance",
                "requestBody": {"required": True, **_json(_ref("ChangeRequest"))},
                "responses": _responses(_ref("ChangeResult"), 400, 401, 403, 409, 429, 503),
            }
        },
        "/v1/changes:batch": {
            "post": {
                "operationId": "ChangeBalances",
                "requestBody": {"required": True, **_json(_ref("ChangeBatch"))},
                "responses": _responses(_ref("ChangeResults"), 400, 401, 403, 409, 429, 503),
            }
        },
        "/v1/changes/{request_id}": {
            "get": {
                "operationId": "GetChange",
                "parameters": [_path_param("request_id", _REQUEST_ID)],
                "responses": _responses(_ref("ChangeResult"), 400, 401, 403, 404, 503),
            }
        },
        "/v1/journal/{user_id}/{currency}": {
            "get": {
                "operationId": "ListJournal",
                "parameters": [
                    _path_param("user_id", {"type": "integer", "minimum": 1, "maximum": 2**64 - 1}),
                    _path_param("currency", _CURRENCY),
                    _query_param(
                        "after_version", {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}
                    ),
                    _query_param("limit", {"type": "integer", "minimum": 0, "maximum": 1000}),
                ],
                "responses": _responses(_ref("JournalEntries"), 400, 401, 403, 503),
            }
        },
        "/v1/health": {
            "get": {
                "operationId": "HealthCheck",
                "responses": _responses(_ref("Health"), 401, 403, 503),
            }
        },
    },
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "Balance": {
                "type": "object",
                "properties": {
                    "user_id": _UINT64,
                    "currency": _CURRENCY,
                    "available": _AMOUNT,
                    "frozen": _AMOUNT,
                    "version": _UINT64,
                },
            },
            "Balances": {
                "type": "object",
                "properties": {"balances": {"type": "array", "items": _ref("Balance")}},
            },
            "ChangeRequest": {
                "type": "object",
                "additionalProperties": False,
                "required": ["request_id", "user_id", "currency", "type", "amount"],
                "properties": {
                    "request_id": _REQUEST_ID,
                    "user_id": _USER_ID,
                    "currency": _CURRENCY,
                    "type": _CHANGE_TYPE,
                    "amount": _POSITIVE_AMOUNT,
                    "wait": {"type": "boolean"},
                    "memo": {"type": "string", "maxLength": 256, "pattern": "^[^\u0000]*$"},
                },
            },
            "ChangeBatch": {
                "type": "object",
                "additionalProperties": False,
                "required": ["changes"],
                "properties": {
                    "changes": {"type": "array", "maxItems": 10000, "items": _ref("ChangeRequest")},
                    "wait": {"type": "boolean"},
                },
            },
            "ChangeResult": {
                "type": "object",
                "properties": {
                    "request_id": {"type": "string"},
                    "status": _STATUS,
                    "reject_reason": _REASON,
                    "balance": _ref("Balance"),
                    "duplicate": {"type": "boolean"},
                },
            },
            "ChangeResults": {
                "type": "object",
                "properties": {"results": {"type": "array", "items": _ref("ChangeResult")}},
            },
            "JournalEntry": {
                "type": "object",
                "properties": {
                    "request_id": {"type": "string"},
                    "user_id": _UINT64,
                    "currency": _CURRENCY,
                    "type": _CHANGE_TYPE,
                    "amount": _AMOUNT,
                    "available_after": _AMOUNT,
                    "frozen_after": _AMOUNT,
                    "version": _UINT64,
                    "applied_at_unix_ms": {"type": "string", "pattern": "^[0-9]+$"},
                    "memo": {"type": "string"},
                },
            },
            "JournalEntries": {
                "type": "object",
                "properties": {"entries": {"type": "array", "items": _ref("JournalEntry")}},
            },
            "Health": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["UNKNOWN", "SERVING", "NOT_SERVING"]},
                    "components": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        }
    },
}
