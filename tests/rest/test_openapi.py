"""The OpenAPI document: valid OpenAPI 3.0, stating ids, signing and errors; and schemathesis
against a live gateway: no server errors, and every answer matches the documented statuses,
content types and schemas.

The checks that the server accepts exactly what the schema allows (ST201/ST202) are not
run: proto3's JSON mapping also accepts numbers for 64-bit fields and enum values, which a
JSON Schema cannot state exactly; the schema documents the canonical forms."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

from ledgerd.api.openapi import DOCUMENT
from ledgerd.signing import KEY_ID_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from ledgerd.v1 import balance_pb2 as pb


def test_gateway_conforms_to_its_openapi_document(rest: str, tmp_path: Path) -> None:
    """`schemathesis run` with every check passes against a live gateway."""
    cli = shutil.which("schemathesis") or str(Path(__file__).parents[2] / ".venv/bin/schemathesis")
    done = subprocess.run(
        [cli, "run", f"{rest}/openapi.json", "--checks",
         "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_schema_conformance", "--max-examples", "40",
         "--phases", "examples,coverage,fuzzing", "--report-dir", str(tmp_path),
         # A stream that lasts until its limit or the client hangs up: tests/rest/test_rest.py.
         "--exclude-path", "/v1/events"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
    ]


def test_document_is_valid_openapi_3_0() -> None:
    """The document validates against the OpenAPI 3.0 schema (schemathesis's copy)."""
    errors = [str(e) for e in OPENAPI_30_VALIDATOR.iter_errors(json.loads(json.dumps(DOCUMENT)))]
    assert errors == []


def test_ids_allow_20_digits() -> None:
    """2**64-1 (20 digits) is allowed wherever a user_id is, and nothing longer."""
    biggest = str(2**64 - 1)
    pattern = DOCUMENT["components"]["schemas"]["ChangeRequest"]["properties"]["user_id"]["pattern"]
    assert re.fullmatch(pattern, biggest) and not re.fullmatch(pattern, biggest + "0")
    for path, _, operation in operations():
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "user_id":
                assert parameter["schema"]["maximum"] == 2**64 - 1, path


def test_signing_headers_are_a_security_scheme_on_every_operation() -> None:
    """The four x-ledgerd-* headers are apiKey schemes, required together (or none)."""
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert {(s["type"], s["in"], s["name"]) for s in schemes.values()} == {
        ("apiKey", "header", header)
        for header in (KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
    }
    for path, _, operation in operations():
        assert operation["security"] == [{name: [] for name in schemes}, {}], path


def test_every_operation_lists_its_errors_with_the_error_schema() -> None:
    """401/403/500/503 everywhere, 400/413/415 with a body, 404 on GetChange; one Error."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, _, operation in operations():
        responses = operation["responses"]
        expected = {"401", "403", "500", "503"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415", "409", "429"}
        assert expected <= set(responses), path
        for status, response in responses.items():
            if status != "200":
                assert {k: v for k, v in response.items() if k != "description"} == error
    assert "404" in DOCUMENT["paths"]["/v1/changes/{request_id}"]["get"]["responses"]
    schema = DOCUMENT["components"]["schemas"]["Error"]
    assert schema["required"] == ["code", "message", "details"]


def test_served_document_is_the_module_document(rest: str) -> None:
    """/openapi.json serves DOCUMENT."""
    with urllib.request.urlopen(f"{rest}/openapi.json", timeout=15) as answer:
        assert json.loads(answer.read()) == json.loads(json.dumps(DOCUMENT))


SCHEMAS = DOCUMENT["components"]["schemas"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("ChangeRequest", pb.ChangeBalanceRequest),
        ("ChangeBatch", pb.ChangeBalancesRequest),
        ("ChangeResult", pb.ChangeResult),
        ("JournalEntry", pb.JournalEntry),
        ("TransferRequest", pb.TransferRequest),
        ("Transfer", pb.Transfer),
        ("TransferResponse", pb.TransferResponse),
        ("Balances", pb.GetBalanceResponse),
        ("BalanceAsOf", pb.BalanceAsOf),
        ("Statement", pb.GetStatementResponse),
    ],
)
def test_schemas_have_every_field_of_their_message(schema: str, message: Any) -> None:
    """Each schema lists exactly its proto message's fields, by their proto (snake_case) names."""
    assert set(SCHEMAS[schema]["properties"]) == {f.name for f in message.DESCRIPTOR.fields}


def test_change_types_a_client_sends_exclude_the_transfer_legs() -> None:
    """Requests take the client types (SPEND_FROZEN and the hold changes a client sends
    included); the journal shows every type."""
    every_type = [v.name for v in pb.ChangeType.DESCRIPTOR.values if v.number != 0]
    sent = SCHEMAS["ChangeRequest"]["properties"]["type"]["enum"]
    assert sent == [
        "DEPOSIT", "WITHDRAW", "FREEZE", "UNFREEZE", "SPEND_FROZEN", "HOLD", "HOLD_CAPTURE",
        "HOLD_RELEASE",
    ]  # fmt: skip
    assert SCHEMAS["JournalEntry"]["properties"]["type"]["enum"] == every_type


def test_transfer_routes_take_write_and_read_shapes() -> None:
    """POST /v1/transfers takes a TransferRequest; both transfer routes answer a
    TransferResponse; GetTransfer documents 404 for an unknown transfer."""
    post = DOCUMENT["paths"]["/v1/transfers"]["post"]
    get = DOCUMENT["paths"]["/v1/transfers/{request_id}"]["get"]
    ok = {"$ref": "#/components/schemas/TransferResponse"}
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TransferRequest"
    }
    assert [
        op["responses"]["200"]["content"]["application/json"]["schema"] for op in (post, get)
    ] == [
        ok,
        ok,
    ]
    assert "404" in get["responses"] and "409" in post["responses"]
