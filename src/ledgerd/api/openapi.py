"""The OpenAPI 3 document of the REST/JSON gateway (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

import grpc

from ledgerd.signing import KEY_ID_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

_UINT64 = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "unsigned 64-bit, as text"}
_USER_ID = {
    "type": "string",
    "pattern": "^[1-9][0-9]{0,19}$",
    "description": "1 to 2**64-1 (18446744073709551615), as text (also accepted as a JSON number)",
}
_AMOUNT = {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$"}
# A request amount: the canonical form, and not zero.
_POSITIVE_AMOUNT = {
    "type": "string",
    "pattern": r"^(?=.*[1-9])(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$",
}
_REQUEST_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}
_MEMO = {"type": "string", "maxLength": 256, "pattern": "^[^\u0000]*$"}
_CURRENCY = {"type": "string", "pattern": "^[A-Z0-9]{1,16}$"}
# What ChangeBalance(s) accept; the journal also shows the legs of transfers.
_CHANGE_TYPE = {
    "type": "string",
    "enum": ["DEPOSIT", "WITHDRAW", "FREEZE", "UNFREEZE", "SPEND_FROZEN"],
}
_JOURNAL_TYPE = {
    "type": "string",
    "enum": [
        *_CHANGE_TYPE["enum"],
        "TRANSFER_OUT",
        "TRANSFER_OUT_FROZEN",
        "TRANSFER_IN",
        "TRANSFER_RETURN",
    ],
}
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
        (400, "INVALID_ARGUMENT: a malformed field, named in the message and in a"
         " google.rpc.BadRequest detail; also an undecodable body"),
        (401, "UNAUTHENTICATED: missing or bad signature"),
        (403, "PERMISSION_DENIED: a valid key outside its scopes"),
        (404, "NOT_FOUND: unknown request"),
        (409, "ALREADY_EXISTS: request_id reused with different fields"),
        (413, "RESOURCE_EXHAUSTED: a body over 16 MiB; not retriable as is"),
        (415, "INVALID_ARGUMENT: a body without Content-Type application/json"),
        (429, "RESOURCE_EXHAUSTED: overloaded; retry later with the same request_id"),
        (500, "INTERNAL: a server bug (logged)"),
        (503, "UNAVAILABLE: a backend is unavailable; retry with the same request_id"),
    )
}  # fmt: skip
# Every operation can meet these: signing, a server bug, a backend down.
_COMMON_ERRORS = (401, 403, 500, 503)
# Operations with a JSON body: malformed, too large, or not JSON.
_BODY_ERRORS = (400, 413, 415)

# The four signing headers, each an apiKey scheme; a signed call sends all four.
_SIGNING_HEADERS = {
    "keyId": (KEY_ID_HEADER, "the key's id"),
    "timestamp": (TIMESTAMP_HEADER, "milliseconds since the Unix epoch, within 30 s of the server"),
    "nonce": (NONCE_HEADER, "16 to 64 characters, never reused within the time window"),
    "signature": (
        SIGNATURE_HEADER,
        'lowercase hex HMAC-SHA256(secret, "v1\\n{HTTP method} {path and query}\\n{key id}'
        '\\n{timestamp}\\n{nonce}\\n{hex sha256(body)}")',
    ),
}
_SECURITY_SCHEMES = {
    name: {"type": "apiKey", "in": "header", "name": header, "description": text}
    for name, (header, text) in _SIGNING_HEADERS.items()
}
# All four headers together, or none when the server has no keys (signing off).
_SECURITY: list[dict[str, list[str]]] = [{name: [] for name in _SIGNING_HEADERS}, {}]


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    return {
        "200": {"description": "OK", **_json(ok)},
        **{str(c): _ERRORS[str(c)] for c in sorted({*codes, *_COMMON_ERRORS})},
    }


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _operation(
    operation_id: str,
    ok: dict[str, Any],
    *errors: int,
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "security": _SECURITY}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(_ref(body))}
        errors = (*errors, *_BODY_ERRORS)
    operation["responses"] = _responses(ok, *errors)
    return operation


_ID_PARAMETER = {"type": "integer", "minimum": 1, "maximum": 2**64 - 1}

# A stream: one BalanceEvent per line (NDJSON), as they are published (docs/events.md).
_TAIL_EVENTS: dict[str, Any] = {
    "operationId": "TailEvents",
    "description": "The change events of the topic balance-events (docs/events.md), one"
    " BalanceEvent per line (application/x-ndjson) as they are published, until `limit`"
    " events or the client hangs up. The headers are sent once the server's reader is"
    " positioned: every change applied after that reaches the stream. An error after the"
    ' first line ends the stream with a last line {"error": {"code", "message"}}. Needs the'
    " read scope when calls are signed.",
    "security": _SECURITY,
    "parameters": [
        {
            **_query_param("from_beginning", {"type": "boolean", "default": False}),
            "description": "start from the oldest event kept instead of only new ones",
        },
        {
            **_query_param("limit", {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}),
            "description": "end the stream after this many events (0 or absent: never)",
        },
    ],
    "responses": {
        "200": {
            "description": "OK: a stream of BalanceEvent objects, one JSON object per line",
            "content": {"application/x-ndjson": {"schema": _ref("BalanceEvent")}},
        },
        **{str(c): _ERRORS[str(c)] for c in sorted({400, 429, *_COMMON_ERRORS})},
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "ledgerd REST/JSON gateway",
        "version": "1.0.0",
        "description": "The operations of ledgerd.v1.BalanceService over HTTP/JSON. Numbers of"
        " 64 bits travel as text, enums by name, as in proto3's JSON mapping. Every error,"
        " including an unknown path (404 NOT_FOUND) and a method a path does not serve (405"
        " UNIMPLEMENTED, with an Allow header), is an Error object: the gRPC code name, a"
        " message, and google.rpc details. Requests with a body must send Content-Type"
        " application/json. Signing (the four x-ledgerd-* headers) is required once the server"
        " has keys.",
    },
    "paths": {
        "/v1/balances/{user_id}": {
            "get": _operation(
                "GetBalance",
                _ref("Balances"),
                400,
                429,
                parameters=[
                    _path_param("user_id", _ID_PARAMETER),
                    _query_param("currency", _CURRENCY),
                ],
            )
        },
        "/v1/changes": {
            "post": _operation(
                "ChangeBalance", _ref("ChangeResult"), 409, 429, body="ChangeRequest"
            )
        },
        "/v1/changes:batch": {
            "post": _operation(
                "ChangeBalances", _ref("ChangeResults"), 409, 429, body="ChangeBatch"
            )
        },
        "/v1/changes/{request_id}": {
            "get": _operation(
                "GetChange",
                _ref("ChangeResult"),
                400,
                404,
                429,
                parameters=[_path_param("request_id", _REQUEST_ID)],
            )
        },
        "/v1/journal/{user_id}/{currency}": {
            "get": _operation(
                "ListJournal",
                _ref("JournalEntries"),
                400,
                429,
                parameters=[
                    _path_param("user_id", _ID_PARAMETER),
                    _path_param("currency", _CURRENCY),
                    _query_param(
                        "after_version", {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}
                    ),
                    _query_param("limit", {"type": "integer", "minimum": 0, "maximum": 1000}),
                ],
            )
        },
        "/v1/health": {"get": _operation("HealthCheck", _ref("Health"))},
        "/v1/transfers": {
            "post": _operation(
                "Transfer", _ref("TransferResponse"), 409, 429, body="TransferRequest"
            )
        },
        "/v1/transfers/{request_id}": {
            "get": _operation(
                "GetTransfer",
                _ref("TransferResponse"),
                400,
                404,
                429,
                parameters=[_path_param("request_id", _REQUEST_ID)],
            )
        },
        "/v1/events": {"get": _TAIL_EVENTS},
    },
    "components": {
        "securitySchemes": _SECURITY_SCHEMES,
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": [code.name for code in grpc.StatusCode if code.name != "OK"],
                        "description": "the gRPC status code name",
                    },
                    "message": {"type": "string", "description": "starts with the field, if any"},
                    "details": {"type": "array", "items": _ref("ErrorDetail")},
                },
            },
            "ErrorDetail": {
                "type": "object",
                "description": "a google.rpc error detail message in proto3's JSON mapping, e.g."
                " google.rpc.BadRequest with field_violations [{field, description}]",
                "required": ["@type"],
                "properties": {"@type": {"type": "string"}},
                "additionalProperties": True,
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
                    "memo": _MEMO,
                },
            },
            "ChangeBatch": {
                "type": "object",
                "additionalProperties": False,
                "required": ["changes"],
                "properties": {
                    "changes": {"type": "array", "maxItems": 10000, "items": _ref("ChangeRequest")},
                    "wait": {"type": "boolean"},
                    "atomic": {
                        "type": "boolean",
                        "description": "all changes for one user, at most 100: applied in"
                        " order, all or none (each REJECTED with the failing change's reason)",
                    },
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
                    "type": _JOURNAL_TYPE,
                    "amount": _AMOUNT,
                    "available_after": _AMOUNT,
                    "frozen_after": _AMOUNT,
                    "version": _UINT64,
                    "applied_at_unix_ms": {"type": "string", "pattern": "^[0-9]+$"},
                    "memo": {"type": "string"},
                    "transfer_id": {
                        "type": "string",
                        "description": "the transfer this entry is a leg of (TRANSFER_* types)",
                    },
                    "counterparty_user_id": {
                        **_UINT64,
                        "description": "the other user of that transfer, as text",
                    },
                },
            },
            "BalanceEvent": {
                "type": "object",
                "description": "one applied journal entry, as published to balance-events"
                " (one per line of GET /v1/events); (entry.user_id, entry.currency,"
                " entry.version) identifies it",
                "properties": {
                    "entry": _ref("JournalEntry"),
                    "partition": {"type": "integer", "minimum": 0},
                    "sequence": _UINT64,
                },
            },
            "JournalEntries": {
                "type": "object",
                "properties": {"entries": {"type": "array", "items": _ref("JournalEntry")}},
            },
            "TransferRequest": {
                "type": "object",
                "additionalProperties": False,
                "required": ["request_id", "from_user_id", "to_user_id", "currency", "amount"],
                "properties": {
                    "request_id": _REQUEST_ID,
                    "from_user_id": _USER_ID,
                    "to_user_id": {**_USER_ID, "description": "must differ from from_user_id"},
                    "currency": _CURRENCY,
                    "amount": _POSITIVE_AMOUNT,
                    "from_frozen": {
                        "type": "boolean",
                        "description": "debit the source's frozen amount, not its available one",
                    },
                    "memo": _MEMO,
                    "wait": {"type": "boolean"},
                },
            },
            "Transfer": {
                "type": "object",
                "description": "PENDING until the credit applied (debited: whether the debit"
                " did); APPLIED once both legs did; REJECTED when the debit was refused, or the"
                " credit was (AMOUNT_OVERFLOW) and the amount went back to the source",
                "properties": {
                    "request_id": {"type": "string"},
                    "status": _STATUS,
                    "reject_reason": _REASON,
                    "duplicate": {"type": "boolean"},
                    "debited": {"type": "boolean"},
                    "from_balance": _ref("Balance"),
                    "to_balance": _ref("Balance"),
                    "from_user_id": _UINT64,
                    "to_user_id": _UINT64,
                    "currency": _CURRENCY,
                    "amount": _AMOUNT,
                    "from_frozen": {"type": "boolean"},
                    "memo": {"type": "string"},
                },
            },
            "TransferResponse": {
                "type": "object",
                "properties": {"transfer": _ref("Transfer")},
            },
            "Health": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["UNKNOWN", "SERVING", "NOT_SERVING"]},
                    "components": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    },
}

# Balances as of a moment or a version, and statements (docs/api.md, *Time*): added to the
# document here, in one block.
_MOMENT_PARAMETER = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_MOMENT = {"type": "string", "pattern": "^[0-9]{1,19}$", "description": "Unix ms, as text"}
DOCUMENT["paths"]["/v1/balances/{user_id}"]["get"]["parameters"] += [
    {
        **_query_param("as_of_unix_ms", _MOMENT_PARAMETER),
        "description": "the balances right after every change applied at or before this"
        " moment (Unix ms), from the journal; not with as_of_version",
    },
    {
        **_query_param("as_of_version", {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}),
        "description": "the balance right after the account's change of this version (the"
        " latest when it has fewer), from the journal; needs currency",
    },
]
DOCUMENT["paths"]["/v1/statements/{user_id}/{currency}"] = {
    "get": _operation(
        "GetStatement",
        _ref("Statement"),
        400,
        429,
        parameters=[
            _path_param("user_id", _ID_PARAMETER),
            _path_param("currency", _CURRENCY),
            {**_query_param("from_unix_ms", _MOMENT_PARAMETER), "description": "inclusive"},
            {
                **_query_param("to_unix_ms", _MOMENT_PARAMETER),
                "description": "exclusive, greater than from_unix_ms",
            },
            {
                **_query_param(
                    "page_size", {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
                ),
                "description": "entries per page; 0 or absent: 100; more than 1000: 1000",
            },
            {
                **_query_param("page_token", {"type": "string"}),
                "description": "next_page_token of the previous page, with the same other"
                " parameters",
            },
        ],
    )
}
DOCUMENT["components"]["schemas"]["Balances"]["properties"]["as_of"] = _ref("BalanceAsOf")
DOCUMENT["components"]["schemas"].update(
    {
        "BalanceAsOf": {
            "type": "object",
            "description": "on an as-of answer only: what it was asked for, and when each"
            " balance's journal entry was applied (0: untouched then)",
            "properties": {
                "as_of_unix_ms": _MOMENT,
                "as_of_version": _UINT64,
                "applied_at_unix_ms": {"type": "array", "items": _MOMENT},
            },
        },
        "Statement": {
            "type": "object",
            "description": "one page of an account's statement over [from, to): closing ="
            " opening + the entries of every page, version by version",
            "properties": {
                "opening": _ref("Balance"),
                "closing": _ref("Balance"),
                "entries": {"type": "array", "items": _ref("JournalEntry")},
                "next_page_token": {"type": "string", "description": "absent on the last page"},
                "opening_applied_at_unix_ms": _MOMENT,
                "closing_applied_at_unix_ms": _MOMENT,
            },
        },
    }
)

# -- locked accounts (LockAccount, UnlockAccount): added in one place ----------------------
LOCK_TYPE_NAMES = ("LOCK_DEBITS", "LOCK_FULL", "UNLOCK")
_ACCOUNT_LOCK = {
    "type": "string",
    "enum": ["ACCOUNT_LOCK_NONE", "ACCOUNT_LOCK_DEBITS", "ACCOUNT_LOCK_FULL"],
    "description": "what the account refuses: nothing, debits (WITHDRAW, FREEZE, SPEND_FROZEN,"
    " transfers out) or every change (a transfer's return aside)",
}


def _add_locks(document: dict[str, Any]) -> None:
    """The lock RPCs' paths and schemas, and the lock fields of existing schemas."""
    schemas = document["components"]["schemas"]
    journal_type = {**_JOURNAL_TYPE, "enum": [*_JOURNAL_TYPE["enum"], *LOCK_TYPE_NAMES]}
    schemas["JournalEntry"]["properties"]["type"] = journal_type
    reason = {**_REASON, "enum": [*_REASON["enum"], "ACCOUNT_LOCKED"]}
    for name in ("ChangeResult", "Transfer"):
        schemas[name]["properties"]["reject_reason"] = reason
    schemas["Balance"]["properties"]["lock"] = _ACCOUNT_LOCK
    schemas["JournalEntry"]["properties"]["actor"] = {
        "type": "string",
        "description": "who asked for a lock change: the signing key id, when signing is on",
    }
    schemas["JournalEntry"]["properties"]["lock_after"] = _ACCOUNT_LOCK
    account = {"request_id": _REQUEST_ID, "user_id": _USER_ID, "currency": _CURRENCY}
    schemas["LockAccountRequest"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["request_id", "user_id", "currency", "lock"],
        "properties": {
            **account,
            "lock": {"type": "string", "enum": ["ACCOUNT_LOCK_DEBITS", "ACCOUNT_LOCK_FULL"]},
            "memo": _MEMO,
            "wait": {"type": "boolean"},
        },
    }
    schemas["UnlockAccountRequest"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["request_id", "user_id", "currency"],
        "properties": {**account, "memo": _MEMO, "wait": {"type": "boolean"}},
    }
    schemas["LockResult"] = {"type": "object", "properties": {"result": _ref("ChangeResult")}}
    for path, operation_id, body in (
        ("/v1/locks", "LockAccount", "LockAccountRequest"),
        ("/v1/unlocks", "UnlockAccount", "UnlockAccountRequest"),
    ):
        post = _operation(operation_id, _ref("LockResult"), 409, 429, body=body)
        post["description"] = "needs a key with the admin scope when signing is on"
        document["paths"][path] = {"post": post}


_add_locks(DOCUMENT)


# -- holds (docs/api.md, "Holds"): added in one place ----------------------------------------
CLIENT_HOLD_TYPE_NAMES = ("HOLD", "HOLD_CAPTURE", "HOLD_RELEASE")
HOLD_REASON_NAMES = (
    "HOLD_NOT_FOUND",
    "HOLD_RELEASED",
    "HOLD_EXPIRED",
    "HOLD_OVER_CAPTURE",
    "HOLD_CAPTURED",
)
_HOLD_STATE = {
    "type": "string",
    "enum": ["HOLD_STATE_OPEN", "HOLD_STATE_CAPTURED", "HOLD_STATE_RELEASED", "HOLD_STATE_EXPIRED"],
}
_UNIX_MS = {"type": "string", "pattern": "^-?[0-9]{1,19}$", "description": "Unix ms, as text"}


def _add_holds(document: dict[str, Any]) -> None:
    """GetHold's path and schemas, and the hold fields of ChangeBalance and the journal."""
    schemas = document["components"]["schemas"]
    change = schemas["ChangeRequest"]
    change["required"] = ["request_id", "user_id", "currency", "type"]
    change["properties"]["amount"] = {
        **_POSITIVE_AMOUNT,
        "description": "required, except for HOLD_RELEASE (which releases what remains)",
    }
    change["properties"]["type"] = {
        **_CHANGE_TYPE,
        "enum": [*_CHANGE_TYPE["enum"], *CLIENT_HOLD_TYPE_NAMES],
    }
    change["properties"]["hold_id"] = {
        **_REQUEST_ID,
        "description": "HOLD_CAPTURE, HOLD_RELEASE: the hold (its HOLD's request_id)",
    }
    change["properties"]["expires_at_unix_ms"] = {
        **_UNIX_MS,
        "description": "HOLD: when it expires (or timeout_ms; exactly one)",
    }
    change["properties"]["timeout_ms"] = {
        "type": "integer", "minimum": 0, "maximum": 2**32 - 1,
        "description": "HOLD: expires this long after acceptance (or expires_at_unix_ms)",
    }  # fmt: skip
    change["properties"]["to_user_id"] = {
        **_USER_ID,
        "description": "HOLD_CAPTURE: credit this user instead of spending (a transfer)",
    }
    journal = schemas["JournalEntry"]["properties"]
    journal["type"] = {
        **journal["type"],
        "enum": [*journal["type"]["enum"], *CLIENT_HOLD_TYPE_NAMES, "HOLD_EXPIRE"],
    }
    journal["hold_id"] = {"type": "string", "description": "the hold of a HOLD* entry"}
    for name in ("ChangeResult", "Transfer"):
        reason = schemas[name]["properties"]["reject_reason"]
        schemas[name]["properties"]["reject_reason"] = {
            **reason,
            "enum": [*reason["enum"], *HOLD_REASON_NAMES],
        }
    schemas["Hold"] = {
        "type": "object",
        "properties": {
            "hold_id": {"type": "string"},
            "user_id": _UINT64,
            "currency": _CURRENCY,
            "amount": _AMOUNT,
            "captured": _AMOUNT,
            "remaining": _AMOUNT,
            "state": _HOLD_STATE,
            "expires_at_unix_ms": _UNIX_MS,
        },
    }
    schemas["HoldResponse"] = {"type": "object", "properties": {"hold": _ref("Hold")}}
    document["paths"]["/v1/holds/{user_id}/{hold_id}"] = {
        "get": _operation(
            "GetHold",
            _ref("HoldResponse"),
            400,
            404,
            429,
            parameters=[_path_param("user_id", _ID_PARAMETER), _path_param("hold_id", _REQUEST_ID)],
        )
    }


_add_holds(DOCUMENT)
