"""Authenticator in-process, with a controllable clock: each check of docs/architecture.md section 5
and the reason it reports (which a real server never tells its client; the end-to-end
behaviour is in tests/security/test_signing.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from ledgerd.api.auth import WINDOW_MS, ApiKey, Authenticator
from ledgerd.api.nonces import MemoryNonceCache
from ledgerd.errors import PermissionDenied, Unauthenticated
from ledgerd.signing import Signer

SERVICE = "/ledgerd.v1.BalanceService/"
READ, WRITE = SERVICE + "GetBalance", SERVICE + "ChangeBalance"
BODY = b"\x08\x01"
KEYS = {
    "writer": ApiKey("writer", ("new-secret", "old-secret"), frozenset({"read", "write"})),
    "reader": ApiKey("reader", ("read-secret",), frozenset({"read"})),
}
NOW_MS = 1_700_000_000_000  # whole seconds: exact as a float of seconds


class Clock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Verifier:
    """The Authenticator's async ``verify``, run to completion: no I/O happens here."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def verify(
        self,
        method: str,
        metadata: Mapping[str, str],
        body: bytes,
        *,
        scope_method: str | None = None,
    ) -> ApiKey:
        return asyncio.run(
            self._authenticator.verify(method, metadata, body, scope_method=scope_method)
        )


@pytest.fixture
def auth(clock: Clock) -> Verifier:
    return Verifier(Authenticator(KEYS, MemoryNonceCache(), clock=clock))


def signed(
    key_id: str = "writer",
    secret: str = "new-secret",
    method: str = READ,
    body: bytes = BODY,
    *,
    timestamp_ms: int = NOW_MS,
    nonce: str = "n" * 32,
) -> dict[str, str]:
    return dict(
        Signer(key_id, secret).headers(method, body, timestamp_ms=timestamp_ms, nonce=nonce)
    )


def reason(auth: Verifier, metadata: dict[str, str], method: str = READ) -> str:
    with pytest.raises(Unauthenticated) as refused:
        auth.verify(method, metadata, BODY)
    return refused.value.reason


def test_valid_signature_returns_the_key(auth: Verifier) -> None:
    """A call signed with the key's newest secret verifies as that key."""
    assert auth.verify(READ, signed(), BODY) is KEYS["writer"]
    assert auth.verify(WRITE, signed(method=WRITE, nonce="m" * 32), BODY) is KEYS["writer"]


def test_previous_secret_is_accepted_during_rotation(auth: Verifier) -> None:
    """Any listed secret verifies; one that is not listed does not."""
    assert auth.verify(READ, signed(secret="old-secret"), BODY) is KEYS["writer"]
    assert reason(auth, signed(secret="older-secret", nonce="o" * 32)) == "bad_signature"


def test_unknown_key(auth: Verifier) -> None:
    assert reason(auth, signed(key_id="nobody", secret="x")) == "unknown_key"


@pytest.mark.parametrize(
    ("case", "metadata", "method"),
    [
        ("wrong secret", signed(secret="guess"), READ),
        ("tampered body", signed(body=BODY + b"\x10\x01"), READ),
        ("other method", signed(method=SERVICE + "GetChange"), READ),
        ("other key's secret", signed(key_id="reader", secret="new-secret"), READ),
    ],
)
def test_bad_signature(auth: Verifier, case: str, metadata: dict[str, str], method: str) -> None:
    assert reason(auth, metadata, method) == "bad_signature", case


@pytest.mark.parametrize(
    ("case", "change", "expected"),
    [
        ("no key id", {"x-ledgerd-key-id": ""}, "missing"),
        ("no signature", {"x-ledgerd-signature": ""}, "missing"),
        ("timestamp not digits", {"x-ledgerd-timestamp": "-5"}, "bad_timestamp"),
        ("short nonce", {"x-ledgerd-nonce": "n" * 15}, "bad_nonce"),
        ("long nonce", {"x-ledgerd-nonce": "n" * 65}, "bad_nonce"),
    ],
)
def test_malformed_metadata(
    auth: Verifier, case: str, change: dict[str, str], expected: str
) -> None:
    assert reason(auth, {**signed(), **change}) == expected, case


@pytest.mark.parametrize("skew_ms", [-WINDOW_MS, WINDOW_MS])
def test_timestamp_exactly_at_the_window_edge_is_accepted(auth: Verifier, skew_ms: int) -> None:
    """30 s behind or ahead of the server's clock, to the millisecond, still verifies."""
    assert auth.verify(READ, signed(timestamp_ms=NOW_MS + skew_ms), BODY) is KEYS["writer"]


@pytest.mark.parametrize("skew_ms", [-WINDOW_MS - 1, WINDOW_MS + 1])
def test_timestamp_one_millisecond_outside_the_window_is_refused(
    auth: Verifier, skew_ms: int
) -> None:
    assert reason(auth, signed(timestamp_ms=NOW_MS + skew_ms)) == "expired"


def test_request_expires_as_the_server_clock_moves(auth: Verifier, clock: Clock) -> None:
    """The same signed call verifies while the clock is within 30 s of its timestamp,
    and is refused a millisecond later (a fresh nonce each time, to test time alone)."""
    clock.now_ms = NOW_MS + WINDOW_MS
    assert auth.verify(READ, signed(nonce="a" * 32), BODY) is KEYS["writer"]
    clock.now_ms = NOW_MS + WINDOW_MS + 1
    assert reason(auth, signed(nonce="b" * 32)) == "expired"
    clock.now_ms = NOW_MS - WINDOW_MS  # a client clock ahead of ours
    assert auth.verify(READ, signed(nonce="c" * 32), BODY) is KEYS["writer"]
    clock.now_ms = NOW_MS - WINDOW_MS - 1
    assert reason(auth, signed(nonce="d" * 32)) == "expired"


def test_replayed_nonce_is_refused(auth: Verifier) -> None:
    """The same signed call twice: the second is a replay; another nonce passes."""
    call = signed()
    auth.verify(READ, call, BODY)
    assert reason(auth, call) == "replayed"
    assert auth.verify(READ, signed(nonce="p" * 32), BODY) is KEYS["writer"]


def test_nonces_are_per_key(auth: Verifier) -> None:
    """Two keys may use the same nonce."""
    auth.verify(READ, signed(), BODY)
    assert auth.verify(READ, signed("reader", "read-secret"), BODY) is KEYS["reader"]


@pytest.mark.parametrize(
    ("case", "refused"),
    [
        ("bad signature", signed(secret="guess")),
        ("expired", signed(timestamp_ms=NOW_MS - WINDOW_MS - 1)),
    ],
)
def test_refused_call_does_not_spend_its_nonce(
    auth: Verifier, case: str, refused: dict[str, str]
) -> None:
    """Only a correctly signed, timely call spends a nonce: guessing one denies nothing."""
    assert reason(auth, refused) in ("bad_signature", "expired"), case
    assert auth.verify(READ, signed(), BODY) is KEYS["writer"]


def test_read_scoped_key_may_read_but_not_write(auth: Verifier) -> None:
    """A valid signature of a key without the method's scope is PERMISSION_DENIED."""
    assert auth.verify(READ, signed("reader", "read-secret"), BODY) is KEYS["reader"]
    call = signed("reader", "read-secret", WRITE, nonce="w" * 32)
    with pytest.raises(PermissionDenied):
        auth.verify(WRITE, call, BODY)


def test_scope_follows_scope_method_when_given(auth: Verifier) -> None:
    """A REST path is what is signed; the gRPC method it maps to decides the scope."""
    path = "/v1/balances/1"
    call = signed("reader", "read-secret", path)
    assert auth.verify(path, call, BODY, scope_method=READ) is KEYS["reader"]
    call = signed("reader", "read-secret", path, nonce="r" * 32)
    with pytest.raises(PermissionDenied):
        auth.verify(path, call, BODY, scope_method=WRITE)


@pytest.mark.parametrize(
    ("method", "allowed"), [("GetTransfer", True), ("Transfer", False), ("ChangeBalances", False)]
)
def test_a_read_key_may_get_a_transfer_but_not_make_one(
    auth: Verifier, method: str, allowed: bool
) -> None:
    """GetTransfer needs the read scope; Transfer, like every change, needs write."""
    call = signed("reader", "read-secret", SERVICE + method)
    if allowed:
        assert auth.verify(SERVICE + method, call, BODY) is KEYS["reader"]
    else:
        with pytest.raises(PermissionDenied):
            auth.verify(SERVICE + method, call, BODY)


def test_a_read_key_may_get_a_statement(auth: Verifier) -> None:
    """GetStatement is a read: the read scope is enough."""
    call = signed("reader", "read-secret", SERVICE + "GetStatement")
    assert auth.verify(SERVICE + "GetStatement", call, BODY) is KEYS["reader"]
