"""TLS on the gRPC port, and the CLI signing with a client key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import pytest
from harness import ServerProcess
from harness.load import new_user
from security_support import KEYS

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for localhost / 127.0.0.1, made now with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_server_answers_trusting_clients_and_refuses_plaintext(tmp_path: Path) -> None:
    """With a certificate configured, calls over TLS work and plaintext calls fail."""
    cert, key = self_signed(tmp_path)
    server = ServerProcess(
        tmp_path / "tls", {"LEDGERD_TLS_CERT_FILE": str(cert), "LEDGERD_TLS_KEY_FILE": str(key)}
    ).start()
    try:
        with server.channel() as channel:
            answer = pb_grpc.BalanceServiceStub(channel).HealthCheck(
                pb.HealthCheckRequest(), timeout=5
            )
        assert answer.status == pb.HealthCheckResponse.SERVING
        with grpc.insecure_channel(server.target) as plain, pytest.raises(grpc.RpcError) as refused:
            pb_grpc.BalanceServiceStub(plain).HealthCheck(pb.HealthCheckRequest(), timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        user = new_user()
        target = f"localhost:{server.grpc_port}"
        done = server.run_cli(
            "change", "deposit", str(user), "USD", "3", "--wait", "--addr", target,
            env={"LEDGERD_CLIENT_TLS_CA": str(cert)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "APPLIED"
    finally:
        server.stop()


def test_cli_signs_with_the_client_key_from_the_environment(signed_server: ServerProcess) -> None:
    """`ledgerd change` works against a signing server with LEDGERD_CLIENT_KEY_ID/_SECRET,
    and is refused without them."""
    user = str(new_user())
    target = ["--addr", signed_server.target]
    unsigned = signed_server.run_cli("balance", user, "USD", *target)
    assert unsigned.returncode == 1 and "UNAUTHENTICATED" in unsigned.stderr
    key = {"LEDGERD_CLIENT_KEY_ID": "writer", "LEDGERD_CLIENT_SECRET": KEYS["writer"]["secrets"][1]}  # type: ignore[index]
    done = signed_server.run_cli(
        "change", "deposit", user, "USD", "4.5", "--wait", *target, env=key
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["balance"]["available"] == "4.5"


def test_bad_key_configuration_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    """Malformed LEDGERD_HMAC_KEYS makes `ledgerd serve` exit, naming it, echoing no secret."""
    server = ServerProcess(tmp_path, {"LEDGERD_HMAC_KEYS": '{"k": {"secrets": "hunter2"}}'})
    done = server.run_cli("serve")
    assert done.returncode != 0
    assert "LEDGERD_HMAC_KEYS" in done.stderr
    assert "hunter2" not in done.stderr
