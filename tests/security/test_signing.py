"""Signed requests against a real server: each check of docs/architecture.md section 5."""

from __future__ import annotations

import time
from collections.abc import Sequence

import google.rpc.error_details_pb2 as error_details_pb2
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from harness import ServerProcess
from harness.load import change, new_request_id, new_user
from security_support import KEYS

from ledgerd.client import LedgerdClient
from ledgerd.signing import Signer
from ledgerd.v1 import balance_pb2 as pb

SERVICE = "/ledgerd.v1.BalanceService/"
WRITER = Signer("writer", KEYS["writer"]["secrets"][0])  # type: ignore[index]
REJECTED = "request signature rejected"


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo detail of a failed call's google.rpc.Status trailer."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    (info,) = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    unpacked = error_details_pb2.ErrorInfo()
    info.Unpack(unpacked)
    return unpacked


def raw_call(
    server: ServerProcess, method: str, body: bytes, metadata: Sequence[tuple[str, str]] | None
) -> grpc.StatusCode:
    """Send bytes to a method with the given metadata; the status code of the answer."""
    with grpc.insecure_channel(server.target) as channel:
        stub = channel.unary_unary(
            SERVICE + method, request_serializer=None, response_deserializer=None
        )
        try:
            stub(body, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                assert exc.details() == REJECTED  # never says which check failed
                info = error_info(exc)  # nor do the details
                assert (info.reason, dict(info.metadata)) == ("SIGNATURE_REJECTED", {})
            if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                assert error_info(exc).reason == "SCOPE_MISSING"
            return exc.code()
    return grpc.StatusCode.OK


def balance_body() -> bytes:
    return pb.GetBalanceRequest(user_id=new_user(), currency="USD").SerializeToString()


def test_valid_signature_is_accepted(signed_server: ServerProcess) -> None:
    """A request signed with the key's newest secret succeeds."""
    body = balance_body()
    assert (
        raw_call(signed_server, "GetBalance", body, WRITER.headers(SERVICE + "GetBalance", body))
        == grpc.StatusCode.OK
    )


def test_previous_secret_still_works_during_rotation(signed_server: ServerProcess) -> None:
    """Any of a key's listed secrets verifies (rotation without downtime)."""
    body = balance_body()
    old = Signer("writer", "old-secret")
    assert (
        raw_call(signed_server, "GetBalance", body, old.headers(SERVICE + "GetBalance", body))
        == grpc.StatusCode.OK
    )


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", lambda body: None),
        (
            "wrong secret",
            lambda body: Signer("writer", "guess").headers(SERVICE + "GetBalance", body),
        ),
        ("unknown key", lambda body: Signer("nobody", "x").headers(SERVICE + "GetBalance", body)),
        ("tampered body", lambda body: WRITER.headers(SERVICE + "GetBalance", body + b"\x10\x01")),
        ("tampered method", lambda body: WRITER.headers(SERVICE + "GetChange", body)),
        (
            "too old",
            lambda body: WRITER.headers(
                SERVICE + "GetBalance", body, timestamp_ms=int(time.time() * 1000) - 31_000
            ),
        ),
        (
            "too new",
            lambda body: WRITER.headers(
                SERVICE + "GetBalance", body, timestamp_ms=int(time.time() * 1000) + 31_000
            ),
        ),
        ("short nonce", lambda body: WRITER.headers(SERVICE + "GetBalance", body, nonce="abc")),
    ],
)
def test_every_failed_check_is_unauthenticated_with_one_message(
    signed_server: ServerProcess, case: str, headers: object
) -> None:
    """Each bad signature is UNAUTHENTICATED, with the same message whatever failed."""
    body = balance_body()
    assert (
        raw_call(signed_server, "GetBalance", body, headers(body))
        == grpc.StatusCode.UNAUTHENTICATED
    )  # type: ignore[operator]


def test_replayed_nonce_is_refused(signed_server: ServerProcess) -> None:
    """The same signed call sent twice: the second is UNAUTHENTICATED."""
    body = balance_body()
    headers = WRITER.headers(SERVICE + "GetBalance", body)
    assert raw_call(signed_server, "GetBalance", body, headers) == grpc.StatusCode.OK
    assert raw_call(signed_server, "GetBalance", body, headers) == grpc.StatusCode.UNAUTHENTICATED


def test_read_scoped_key_cannot_write(signed_server: ServerProcess) -> None:
    """A read-only key may read; ChangeBalance gets PERMISSION_DENIED and stores nothing."""
    reader = Signer("reader", "read-secret")
    body = balance_body()
    assert (
        raw_call(signed_server, "GetBalance", body, reader.headers(SERVICE + "GetBalance", body))
        == grpc.StatusCode.OK
    )
    request = change(new_user(), pb.DEPOSIT, "1", request_id=new_request_id("scope"))
    write = request.SerializeToString()
    code = raw_call(
        signed_server, "ChangeBalance", write, reader.headers(SERVICE + "ChangeBalance", write)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    with (
        LedgerdClient(signed_server.target, key_id="writer", secret="new-secret") as client,
        pytest.raises(grpc.RpcError) as missing,
    ):
        client.get_change(request.request_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_standard_health_service_needs_no_signature(signed_server: ServerProcess) -> None:
    """Probes reach grpc.health.v1 without signing."""
    with grpc.insecure_channel(signed_server.target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_client_signs_and_retries_keep_the_request_id(signed_server: ServerProcess) -> None:
    """The Python client signs every call; a repeated change is answered as a duplicate."""
    with LedgerdClient(signed_server.target, key_id="writer", secret="new-secret") as client:
        user = new_user()
        first = client.change(
            "deposit", user, "USD", "5", request_id="retry-me-" + str(user), wait=True
        )
        again = client.change(
            "deposit", user, "USD", "5", request_id="retry-me-" + str(user), wait=True
        )
        assert (first.status, first.duplicate) == (pb.APPLIED, False)
        assert (again.status, again.duplicate) == (pb.APPLIED, True)
        assert client.get_balance(user, "USD")[0].available == "5"


def test_rejections_are_counted_by_reason_in_metrics(signed_server: ServerProcess) -> None:
    """ledgerd_auth_failures_total carries the reason, which the client never sees."""
    body = balance_body()
    raw_call(
        signed_server,
        "GetBalance",
        body,
        Signer("writer", "guess").headers(SERVICE + "GetBalance", body),
    )
    assert signed_server.metric('ledgerd_auth_failures_total{reason="bad_signature"}') >= 1
    text_has_secret = "new-secret" in signed_server.log_tail(10_000)
    assert not text_has_secret
