"""The request-signing scheme of docs/architecture.md section 5, shared by server and clients.

It lives on the root floor, not in ``api/``, so that the shipped client (``client.py``) can
sign requests without importing the server.

canonical = "v1\\n{method}\\n{key id}\\n{timestamp ms}\\n{nonce}\\n{hex sha256(body)}"
signature = lowercase hex HMAC-SHA256(secret, canonical)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SCHEME = "v1"
KEY_ID_HEADER = "x-ledgerd-key-id"
TIMESTAMP_HEADER = "x-ledgerd-timestamp"
NONCE_HEADER = "x-ledgerd-nonce"
SIGNATURE_HEADER = "x-ledgerd-signature"
MIN_NONCE_CHARS, MAX_NONCE_CHARS = 16, 64


def canonical_string(method: str, key_id: str, timestamp_ms: int, nonce: str, body: bytes) -> str:
    """The text that is signed: scheme, full method, key id, time, nonce, body digest."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{SCHEME}\n{method}\n{key_id}\n{timestamp_ms}\n{nonce}\n{digest}"


def signature(secret: str, canonical: str) -> str:
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs requests with one key (client side)."""

    key_id: str
    secret: str

    def headers(
        self,
        method: str,
        body: bytes,
        *,
        timestamp_ms: int | None = None,
        nonce: str | None = None,
    ) -> list[tuple[str, str]]:
        """The four metadata entries for one call of ``method`` with serialized ``body``."""
        timestamp_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        nonce = nonce or secrets.token_hex(16)
        canonical = canonical_string(method, self.key_id, timestamp_ms, nonce, body)
        return [
            (KEY_ID_HEADER, self.key_id),
            (TIMESTAMP_HEADER, str(timestamp_ms)),
            (NONCE_HEADER, nonce),
            (SIGNATURE_HEADER, signature(self.secret, canonical)),
        ]
