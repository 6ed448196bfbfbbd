"""Signatures on change messages: the consumer applies only what the outbox produced.

Every change message carries an HMAC-SHA256 of its value bytes in the header
``ledgerd-mac`` (hex), keyed with the deployment's message key, which lives in
the store (``Store.message_key``): a process that can write to the log but
cannot read the database cannot make a change the consumer accepts. This
replaces reading each message's outbox row back, which cost a row read per
change. Verification costs a couple of microseconds per message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

MAC_HEADER = "ledgerd-mac"


# HMAC (RFC 2104) over SHA-256: keys are padded to the hash's block with these bytes.
_BLOCK_SIZE = hashlib.sha256().block_size
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


class MessageSigner:
    """Signs and verifies change messages with one deployment key."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("message key must be at least 16 bytes")
        # HMAC's keyed inner and outer hashes, computed once and copied per message:
        # ``hmac.new`` sets them up again for every message, most of a MAC's cost.
        if len(key) > _BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK_SIZE, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        """The headers to publish ``value`` with."""
        return [(MAC_HEADER, self._mac(value))]

    def verify(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> bool | None:
        """True if signed with this key, False if signed otherwise (or tampered with),
        None if unsigned (written before messages were signed)."""
        for name, mac in headers:
            if name == MAC_HEADER:
                return hmac.compare_digest(mac, self._mac(value))
        return None

    def verify_mac(self, value: bytes, mac: bytes) -> bool:
        """Whether ``mac`` (a ``ledgerd-mac`` header's value) signs ``value`` with this key."""
        inner = self._inner.copy()
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return hmac.compare_digest(outer.hexdigest().encode("ascii"), mac)

    def _mac(self, value: bytes) -> bytes:
        """HMAC-SHA256 of ``value``, lowercase hex (as ``hmac.new(key, value, sha256)``)."""
        inner = self._inner.copy()
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest().encode("ascii")
