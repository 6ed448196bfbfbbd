"""What a real ``ledgerd serve`` shows operators: JSON log lines only, an access log of
calls, and RPC metrics with the grpc-ecosystem labels (embedded stack; Kafka's own
log lines are checked against an unreachable broker)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from e2e_support import change, new_request_id, new_user
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from harness import ServerProcess, free_port, ledgerd_command

from ledgerd.client import LedgerdClient
from ledgerd.signing import Signer
from ledgerd.v1 import balance_pb2 as pb

KEY_ID, SECRET = "ops-key", "s3cret-never-logged"
AMOUNT = "913.125"  # distinctive, so a line that leaked it would be found
BALANCE_SERVICE = "ledgerd.v1.BalanceService"


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's output, each parsed as one JSON object (asserts they are)."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line[:300]}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A signing server with the access log at info and every debug line on, in Python's
    development mode (asyncio debugging, warnings shown): it has run ``calls`` and stopped."""
    http_port = free_port()
    keys = {KEY_ID: {"secrets": [SECRET], "scopes": ["read", "write"]}}
    server = ServerProcess(
        tmp_path_factory.mktemp("observed"),
        {
            "LEDGERD_HMAC_KEYS": json.dumps(keys),
            "LEDGERD_HTTP_ADDR": f"127.0.0.1:{http_port}",
            "LEDGERD_ACCESS_LOG": "info",
            "LEDGERD_LOG_LEVEL": "debug",
            "PYTHONDEVMODE": "1",
            # The standard loop logs in debug mode (its selector, at start): the test sees
            # the asyncio logger's lines. uvloop, the default, logs there only on errors.
            "LEDGERD_EVENT_LOOP": "asyncio",
        },
    ).start()
    yield server, f"http://127.0.0.1:{http_port}"
    server.stop()


def rest_call(base: str, method: str, path: str, body: bytes = b"") -> tuple[int, str]:
    headers = dict(Signer(KEY_ID, SECRET).headers(f"{method} {path}", body))
    headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metrics_text(server: ServerProcess) -> str:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match[3])
    return total


def make_calls(server: ServerProcess, base: str) -> dict[str, str]:
    """One call of each kind; returns the request ids used."""
    ids = {"grpc": new_request_id(), "rest": new_request_id()}
    user = new_user()
    with LedgerdClient(server.target, key_id=KEY_ID, secret=SECRET) as client:
        client.change("deposit", user, "USD", AMOUNT, request_id=ids["grpc"], wait=True)
        client.change_many([change(user, pb.DEPOSIT, AMOUNT) for _ in range(3)])
        client.get_change(ids["grpc"])
    body = json.dumps(
        {"request_id": ids["rest"], "user_id": str(user), "currency": "USD",
         "type": "DEPOSIT", "amount": AMOUNT}
    ).encode()  # fmt: skip
    assert rest_call(base, "POST", "/v1/changes", body)[0] == 200
    assert rest_call(base, "GET", f"/v1/changes/{ids['rest']}")[0] == 200
    assert rest_call(base, "GET", "/v1/changes/no-such-request")[0] == 404
    with server.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        health.Check(health_pb2.HealthCheckRequest(service=BALANCE_SERVICE), timeout=5)
        health.List(health_pb2.HealthListRequest(), timeout=5)
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        asked = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        list(reflection.ServerReflectionInfo(asked, timeout=5))
        reflection_v1 = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        asked = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        list(reflection_v1(asked, timeout=5))
        with pytest.raises(grpc.RpcError):  # unsigned: refused
            channel.unary_unary(f"/{BALANCE_SERVICE}/GetChange")(b"", timeout=5)
    return ids


@pytest.fixture(scope="module")
def after_calls(observed: tuple[ServerProcess, str]) -> dict[str, Any]:
    server, base = observed
    ids = make_calls(server, base)
    return {"ids": ids, "metrics": metrics_text(server)}


def access_lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [record for record in json_lines(server.log_path) if record.get("event") == "call"]


def test_every_output_line_is_one_json_object(
    observed: tuple[ServerProcess, str], after_calls: dict[str, Any]
) -> None:
    """Every line the server wrote, stdlib loggers' (asyncio, grpc) included, is JSON."""
    server, _ = observed
    records = json_lines(server.log_path)
    loggers = {record.get("logger") for record in records}
    assert {"asyncio", "grpc._cython.cygrpc"} <= loggers, loggers


def test_the_access_log_has_a_line_per_call(
    observed: tuple[ServerProcess, str], after_calls: dict[str, Any]
) -> None:
    """Each gRPC and REST call has a line naming method, code, duration, peer, key id and
    request id (a batch: its size); health and reflection calls too."""
    server, _ = observed
    lines = access_lines(server)
    ids = after_calls["ids"]

    def one(**fields: object) -> dict[str, Any]:
        """The line with these fields (the harness's own health checks may add more)."""
        found = [line for line in lines if fields.items() <= line.items()]
        assert found, (fields, lines)
        return found[-1]

    grpc_change = one(
        protocol="grpc", method=f"/{BALANCE_SERVICE}/ChangeBalance", request_id=ids["grpc"]
    )
    assert grpc_change["code"] == "OK" and grpc_change["key_id"] == KEY_ID
    assert grpc_change["peer"].startswith("ipv4:127.0.0.1:")
    assert isinstance(grpc_change["duration_ms"], float)
    batch = one(protocol="grpc", method=f"/{BALANCE_SERVICE}/ChangeBalances")
    assert batch["changes"] == 3 and "request_id" not in batch
    one(protocol="grpc", method=f"/{BALANCE_SERVICE}/GetChange", request_id=ids["grpc"])
    rest_change = one(protocol="rest", route="POST /v1/changes", request_id=ids["rest"])
    assert rest_change["key_id"] == KEY_ID and rest_change["code"] == "OK"
    one(protocol="rest", route="GET /v1/changes/{request_id}", code="NOT_FOUND")
    one(protocol="grpc", method="/grpc.health.v1.Health/Check", code="OK")
    one(protocol="grpc", method="/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    one(protocol="grpc", method=f"/{BALANCE_SERVICE}/GetChange", code="UNAUTHENTICATED")


def test_no_line_shows_a_secret_signature_or_amount(
    observed: tuple[ServerProcess, str], after_calls: dict[str, Any]
) -> None:
    """Neither the key's secret, any signature header nor the amounts appear in the log."""
    server, _ = observed
    text = server.log_path.read_text()
    assert SECRET not in text
    assert AMOUNT not in text
    assert "signature" not in text.lower()


def test_rpc_metrics_use_grpc_ecosystem_labels(after_calls: dict[str, Any]) -> None:
    """ledgerd_rpc_requests_total counts gRPC and REST calls apart (protocol), health and
    reflection included, with grpc_service / grpc_method / grpc_code / grpc_type."""
    text = after_calls["metrics"]
    expected = [
        ("grpc", "unary", BALANCE_SERVICE, "ChangeBalance", "OK"),
        ("grpc", "unary", BALANCE_SERVICE, "ChangeBalances", "OK"),
        ("grpc", "unary", BALANCE_SERVICE, "GetChange", "UNAUTHENTICATED"),
        ("rest", "unary", BALANCE_SERVICE, "ChangeBalance", "OK"),
        ("rest", "unary", BALANCE_SERVICE, "GetChange", "NOT_FOUND"),
        ("grpc", "unary", "grpc.health.v1.Health", "Check", "OK"),
        ("grpc", "unary", "grpc.health.v1.Health", "List", "OK"),
        ("grpc", "bidi_stream", "grpc.reflection.v1alpha.ServerReflection",
         "ServerReflectionInfo", "OK"),
        ("grpc", "bidi_stream", "grpc.reflection.v1.ServerReflection",
         "ServerReflectionInfo", "OK"),
    ]  # fmt: skip
    for protocol, kind, service, method, code in expected:
        labels = {
            "protocol": protocol,
            "grpc_type": kind,
            "grpc_service": service,
            "grpc_method": method,
        }
        assert sample(text, "ledgerd_rpc_requests_total", **labels, grpc_code=code) >= 1, labels
        assert sample(text, "ledgerd_rpc_latency_seconds_count", **labels) >= 1, labels
    assert 'method="' not in text.replace("grpc_method=", "")


def test_metrics_have_no_created_series(after_calls: dict[str, Any]) -> None:
    """No counter or histogram exports a ``_created`` twin."""
    assert "_created" not in after_calls["metrics"]


def test_the_operations_port_answers_404_off_its_paths(
    observed: tuple[ServerProcess, str],
) -> None:
    """/metrics, /healthz, /readyz and the operator's page (/ and its files) answer; any
    other path is 404."""
    server, _ = observed
    base = f"http://127.0.0.1:{server.metrics_port}"
    for path in ("/metrics", "/healthz", "/readyz", "/", "/console/console.js"):
        with urllib.request.urlopen(base + path, timeout=5) as answer:
            assert answer.status == 200, path
    for path in ("/metrics/", "/metrics/x", "/favicon.ico", "/debug", "/console/x.js"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + path, timeout=5)
        assert refused.value.code == 404, path


def test_the_access_log_is_off_at_the_default_log_level(tmp_path: Path) -> None:
    """With the default settings (access log at debug, log level info) no call is logged."""
    server = ServerProcess(tmp_path / "quiet").start()
    try:
        with LedgerdClient(server.target) as client:
            client.change("deposit", new_user(), "USD", "1")
    finally:
        server.stop()
    assert not access_lines(server)


def run_serve(server: ServerProcess, output: Path) -> int:
    """Run ``ledgerd serve`` to its end (for servers that cannot start); its stderr goes
    to ``output`` and nothing may go to stdout."""
    server.data_dir.mkdir(parents=True)
    done = subprocess.run(
        ledgerd_command("serve"),
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout == ""
    output.write_text(done.stderr)
    return done.returncode


def test_a_port_in_use_is_reported_in_json_lines_only(tmp_path: Path) -> None:
    """gRPC's C core prints bind errors straight to stderr; ledgerd silences it, and the
    Python error that follows is one JSON line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path / "taken", {"LEDGERD_GRPC_ADDR": f"127.0.0.1:{port}"})
        assert run_serve(server, tmp_path / "stderr") == 1
    records = json_lines(tmp_path / "stderr")
    crash = [record for record in records if "exception" in record]
    assert crash and "Failed to bind" in crash[-1]["exception"]


def test_librdkafka_complaints_and_the_fatal_error_are_json_lines(tmp_path: Path) -> None:
    """A server whose Kafka broker is unreachable exits 1; librdkafka's complaints and the
    error it stops with come out as JSON lines."""
    server = ServerProcess(
        tmp_path / "no-kafka", {"LEDGERD_LOG_URL": f"kafka://127.0.0.1:{free_port()}"}
    )
    assert run_serve(server, tmp_path / "stderr") == 1
    records = json_lines(tmp_path / "stderr")
    assert any(record.get("logger") == "confluent_kafka" for record in records)
    assert records[-1]["event"] == "ledgerd cannot serve"
    assert records[-1]["error"].startswith("LogUnavailable: kafka at 127.0.0.1:")


PROVOKE = """
import asyncio, gc, logging, threading, warnings
from ledgerd.logs import configure_logging

configure_logging("info", fields={"api_worker": 3})
warnings.warn("a deprecated thing", DeprecationWarning, stacklevel=1)
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("grpc._cython.cygrpc").exception("servicer failed\\nsecond line")
thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
thread.start()
thread.join()

class Broken:
    def __del__(self):
        raise RuntimeError("in a destructor")

Broken()
gc.collect()

async def forgotten():
    async def fail():
        raise ValueError("never retrieved")
    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.sleep(0.01)
    del task
    gc.collect()

asyncio.run(forgotten())
raise SystemError("uncaught at the top")
"""


def test_each_kind_of_python_output_is_one_json_line(tmp_path: Path) -> None:
    """After configure_logging: a warning, a stdlib log with a traceback, a thread's and
    a destructor's uncaught exceptions, asyncio's unretrieved task error and an uncaught
    exception each come out as one JSON line with the process's fields."""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", PROVOKE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    (tmp_path / "stderr").write_text(done.stderr)
    records = json_lines(tmp_path / "stderr")
    assert all(record["api_worker"] == 3 for record in records)
    by_logger = {record.get("logger"): record for record in records}
    assert "a deprecated thing" in by_logger["py.warnings"]["event"]
    grpc_line = by_logger["grpc._cython.cygrpc"]
    assert "ZeroDivisionError" in grpc_line["exception"]
    assert "Task exception was never retrieved" in by_logger["asyncio"]["event"]
    assert "never retrieved" in by_logger["asyncio"]["exception"]
    events = {record["event"]: record for record in records}
    assert events["uncaught exception in thread"]["thread"] == "doomed"
    assert any("in a destructor" in record.get("exception", "") for record in records)
    assert "uncaught at the top" in events["uncaught exception"]["exception"]


CHATTER = """
import logging, structlog
from ledgerd.logs import configure_logging

configure_logging("info", fields={"api_worker": %d})
for number in range(3000):
    structlog.get_logger().info("chatter", number=number)
    logging.getLogger("grpc").warning("stdlib chatter %%d", number)
"""


def test_processes_sharing_one_log_file_never_split_a_line(tmp_path: Path) -> None:
    """API workers share their parent's stderr, an O_APPEND file: two processes logging
    at once leave every line whole (a line and its newline are one write)."""
    path = tmp_path / "shared.log"
    with path.open("ab") as shared:
        writers = [
            subprocess.Popen([sys.executable, "-c", CHATTER % index], stdout=shared, stderr=shared)
            for index in (1, 2)
        ]
        assert [writer.wait(120) for writer in writers] == [0, 0]
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # a split line would not parse
    for index in (1, 2):
        mine = [record for record in records if record["api_worker"] == index]
        assert [record["number"] for record in mine if record["event"] == "chatter"] == list(
            range(3000)
        )
        assert sum(record.get("logger") == "grpc" for record in mine) == 3000
