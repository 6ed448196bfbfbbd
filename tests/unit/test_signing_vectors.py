"""clients/signing-vectors.json: the one set of signing cases every client checks; here the
Python implementation reproduces each one (the TypeScript client's test reads the same file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from ledgerd.signing import (
    MAX_NONCE_CHARS,
    MIN_NONCE_CHARS,
    SIGNATURE_HEADER,
    Signer,
    canonical_string,
)
from ledgerd.v1 import balance_pb2 as pb

VECTORS_PATH = Path(__file__).resolve().parents[2] / "clients" / "signing-vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]


def _body(vector: dict[str, Any]) -> bytes:
    message_class = getattr(pb, vector["request_type"].rsplit(".", 1)[-1])
    return bytes(json_format.ParseDict(vector["request"], message_class()).SerializeToString())


def test_the_vectors_cover_several_methods_and_both_nonce_lengths() -> None:
    """The file is not trivially small: five methods, the shortest and longest nonce."""
    assert len({v["method"] for v in VECTORS}) >= 5
    lengths = {len(v["nonce"]) for v in VECTORS}
    assert {MIN_NONCE_CHARS, MAX_NONCE_CHARS} <= lengths


@pytest.mark.parametrize("vector", VECTORS, ids=[v["method"].rsplit("/", 1)[-1] for v in VECTORS])
def test_python_signs_each_vector_byte_for_byte(vector: dict[str, Any]) -> None:
    """The request serializes to the recorded bytes, whose canonical string and signature are
    the recorded ones."""
    body = _body(vector)
    assert body.hex() == vector["body_hex"]
    canonical = canonical_string(
        vector["method"], vector["key_id"], vector["timestamp_ms"], vector["nonce"], body
    )
    assert canonical == vector["canonical"]
    headers = dict(
        Signer(vector["key_id"], vector["secret"]).headers(
            vector["method"], body, timestamp_ms=vector["timestamp_ms"], nonce=vector["nonce"]
        )
    )
    assert headers[SIGNATURE_HEADER] == vector["signature"]
