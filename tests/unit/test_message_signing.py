"""Change message signatures: HMAC-SHA256 of the value, in hex, keyed with the deployment key."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from ledgerd.log.signing import MAC_HEADER, MessageSigner


@given(key=st.binary(min_size=16, max_size=200), value=st.binary(max_size=300))
def test_the_signature_is_the_standard_hmac_sha256(key: bytes, value: bytes) -> None:
    """Any key (shorter or longer than SHA-256's block) and value: the header holds what
    hmac.new(key, value, sha256) gives, in lowercase hex."""
    expected = hmac.new(key, value, hashlib.sha256).hexdigest().encode("ascii")
    assert MessageSigner(key).headers(value) == [(MAC_HEADER, expected)]


def test_a_signer_keeps_verifying_across_messages() -> None:
    """The keyed state is reused, never consumed: every message verifies, a tampered one
    does not, and one signed with another key does not."""
    signer = MessageSigner(b"k" * 32)
    values = [b"", b"a", b"b" * 1000, b"a"]
    signed = [(value, signer.headers(value)) for value in values]
    assert all(signer.verify(value, headers) for value, headers in signed)
    assert signer.verify(b"tampered", signed[1][1]) is False
    assert signer.verify(b"a", MessageSigner(b"x" * 32).headers(b"a")) is False
    assert signer.verify(b"a", []) is None


@given(key=st.binary(min_size=16, max_size=200), value=st.binary(max_size=300))
def test_verify_mac_accepts_exactly_the_signature_of_the_value(key: bytes, value: bytes) -> None:
    """``verify_mac`` (the column path's check of the one header) agrees with ``verify``:
    the value's own MAC passes; another key's, or the MAC of other bytes, does not."""
    signer = MessageSigner(key)
    ((_, mac),) = signer.headers(value)
    assert signer.verify_mac(value, mac) is True
    assert signer.verify_mac(value + b"x", mac) is False
    assert signer.verify_mac(value, MessageSigner(key + b"!").headers(value)[0][1]) is False
    assert signer.verify_mac(value, mac.upper()) is (mac.upper() == mac)
