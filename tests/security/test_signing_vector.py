"""The worked example of README.md: any client can check its signing against it."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from ledgerd.signing import Signer, canonical_string
from ledgerd.v1 import balance_pb2 as pb

README = Path(__file__).resolve().parents[2] / "README.md"


def documented(name: str) -> str:
    """A value the README's signing example states as `name: value`."""
    match = re.search(rf"^{re.escape(name)}: +`?([^`\n]+)`?$", README.read_text(), re.MULTILINE)
    assert match, f"README lacks {name}"
    return match.group(1)


def test_readme_example_body_digest_and_signature_match_the_implementation() -> None:
    """The README's body bytes, digest and signature are what ledgerd computes."""
    request = pb.ChangeBalanceRequest(
        request_id="order-1001", user_id=42, currency="USD", type=pb.DEPOSIT, amount="10.5"
    )
    body = request.SerializeToString()
    assert body.hex() == documented("body (hex)")
    assert hashlib.sha256(body).hexdigest() == documented("sha256(body)")
    canonical = canonical_string(
        documented("method"),
        documented("key id"),
        int(documented("timestamp")),
        documented("nonce"),
        body,
    )
    expected = documented("signature")
    assert (
        hmac.new(documented("secret").encode(), canonical.encode(), hashlib.sha256).hexdigest()
        == expected
    )
    headers = dict(
        Signer(documented("key id"), documented("secret")).headers(
            documented("method"),
            body,
            timestamp_ms=int(documented("timestamp")),
            nonce=documented("nonce"),
        )
    )
    assert headers["x-ledgerd-signature"] == expected
