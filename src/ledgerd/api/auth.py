"""Server-side verification of signed requests, and the keys they are signed with.

Keys come as JSON (``LEDGERD_HMAC_KEYS`` or the file in ``LEDGERD_HMAC_KEYS_FILE``):
``{"<key id>": {"secrets": ["<newest>", "<previous>"], "scopes": ["read", "write"]}}``.
Several secrets per key allow rotation without downtime. With no keys, signing is off.
Scopes: ``read`` (the read methods), ``write`` (every other method but the admin ones),
``admin`` (LockAccount, UnlockAccount); a key without ``scopes`` has read and write.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledgerd.errors import PermissionDenied, Unauthenticated
from ledgerd.signing import (
    KEY_ID_HEADER,
    MAX_NONCE_CHARS,
    MIN_NONCE_CHARS,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical_string,
    signature,
)

SERVICE_PREFIX = "/ledgerd.v1.BalanceService/"
# The methods a ``read`` key may call; every other one (ChangeBalance(s), Transfer) needs
# ``write``, so a method added without a thought here is the safer of the two.
READ_METHODS = frozenset(
    SERVICE_PREFIX + name
    for name in (
        "GetBalance",
        "GetChange",
        "ListJournal",
        "HealthCheck",
        "GetTransfer",
        "TailEvents",
        "GetStatement",
        "GetHold",
    )
)
# The methods that need ``admin`` (and only it: a ``write`` key may not lock an account).
ADMIN_METHODS = frozenset(SERVICE_PREFIX + name for name in ("LockAccount", "UnlockAccount"))
SCOPES = frozenset({"read", "write", "admin"})
# The scopes of a key that names none.
DEFAULT_SCOPES = ("read", "write")
WINDOW_MS = 30_000
_TIMESTAMP = re.compile(r"[0-9]{1,16}", re.ASCII)


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    secrets: tuple[str, ...]
    scopes: frozenset[str]

    def __repr__(self) -> str:  # never print secrets
        return f"ApiKey({self.key_id!r}, scopes={sorted(self.scopes)})"


def parse_keys(text: str) -> dict[str, ApiKey]:
    """Parse the JSON key set.

    Raises:
        ValueError: the JSON does not have the documented shape (secrets are not echoed).
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON (line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise ValueError('must be an object {"<key id>": {"secrets": [...], "scopes": [...]}}')
    keys: dict[str, ApiKey] = {}
    for key_id, spec in raw.items():
        if not isinstance(spec, dict):
            raise ValueError(f"key {key_id!r}: must be an object")
        secrets_ = spec.get("secrets")
        scopes = spec.get("scopes", list(DEFAULT_SCOPES))
        if (
            not isinstance(secrets_, list)
            or not secrets_
            or not all(isinstance(s, str) and s for s in secrets_)
        ):
            raise ValueError(f"key {key_id!r}: secrets must be a non-empty list of strings")
        if not isinstance(scopes, list) or not set(scopes) <= SCOPES or not scopes:
            raise ValueError(f"key {key_id!r}: scopes must be a list of read, write, admin")
        keys[key_id] = ApiKey(key_id, tuple(secrets_), frozenset(scopes))
    return keys


def load_keys(inline: str, file: Path | None) -> dict[str, ApiKey]:
    """Keys from the inline JSON, or from the file (which wins when both are set)."""
    if file is not None:
        return parse_keys(file.read_text(encoding="utf-8"))
    return parse_keys(inline) if inline.strip() else {}


class NonceCache(Protocol):
    async def first_use(self, key_id: str, nonce: str, ttl_s: int) -> bool:
        """Record the nonce; True only the first time it is seen within ttl_s.

        Raises:
            CacheUnavailable: the shared nonce store did not answer.
        """

    async def close(self) -> None: ...


class Authenticator:
    """Checks a call's signature metadata against the configured keys."""

    def __init__(
        self,
        keys: Mapping[str, ApiKey],
        nonces: NonceCache,
        window_ms: int = WINDOW_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = dict(keys)
        self._nonces = nonces
        self._window_ms = window_ms
        self._clock = clock  # wall-clock seconds, as clients stamp requests; tests control it

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    async def close(self) -> None:
        await self._nonces.close()

    async def verify(
        self,
        method: str,
        metadata: Mapping[str, str],
        body: bytes,
        now_ms: int | None = None,
        *,
        scope_method: str | None = None,
    ) -> ApiKey:
        """The key that signed the call. ``method`` is what was signed; ``scope_method``
        (default: the same) is the gRPC method whose scope the call needs.

        Raises:
            Unauthenticated: any check failed (``reason`` says which, for metrics only).
            PermissionDenied: the signature is valid but the key lacks the method's scope.
        """
        now_ms = int(self._clock() * 1000) if now_ms is None else now_ms
        key_id = metadata.get(KEY_ID_HEADER, "")
        timestamp = metadata.get(TIMESTAMP_HEADER, "")
        nonce = metadata.get(NONCE_HEADER, "")
        sent = metadata.get(SIGNATURE_HEADER, "")
        if not (key_id and timestamp and nonce and sent):
            raise Unauthenticated("missing")
        key = self._keys.get(key_id)
        if key is None:
            raise Unauthenticated("unknown_key")
        if _TIMESTAMP.fullmatch(timestamp) is None:
            raise Unauthenticated("bad_timestamp")
        timestamp_ms = int(timestamp)
        if abs(now_ms - timestamp_ms) > self._window_ms:
            raise Unauthenticated("expired")
        if not MIN_NONCE_CHARS <= len(nonce) <= MAX_NONCE_CHARS:
            raise Unauthenticated("bad_nonce")
        canonical = canonical_string(method, key_id, timestamp_ms, nonce, body)
        # Compare against every secret, so timing does not tell which one matched.
        matched = False
        for secret in key.secrets:
            matched |= hmac.compare_digest(signature(secret, canonical), sent.lower())
        if not matched:
            raise Unauthenticated("bad_signature")
        # Only a correctly signed request may spend a nonce (no denial by guessing).
        if not await self._nonces.first_use(key_id, nonce, ttl_s=2 * self._window_ms // 1000 + 1):
            raise Unauthenticated("replayed")
        needed = _scope_of(scope_method or method)
        if needed not in key.scopes:
            raise PermissionDenied(
                f"key {key_id} may not call {method.rsplit('/', 1)[-1]}",
                key_id=key_id,
                scope=needed,
            )
        return key


def _scope_of(method: str) -> str:
    """The scope a method needs: ``write`` unless it is a read or an admin method."""
    if method in READ_METHODS:
        return "read"
    return "admin" if method in ADMIN_METHODS else "write"
