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


class MessageSigner:
    """Signs and verifies change messages with one deployment key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("message key must be at least 16 bytes")
        self._key = key

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

    def _mac(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).hexdigest().encode("ascii")
