"""ledgerd.api.calls: what a call leaves in the metrics and the access log."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from ledgerd.api import calls
from ledgerd.api.calls import MethodCalls, Outcome, configure_access_log
from ledgerd.v1 import balance_pb2 as pb

METHOD = "/ledgerd.v1.BalanceService/ChangeBalance"


@pytest.fixture(autouse=True)
def access_log_off_afterwards() -> Iterator[None]:
    yield
    configure_access_log("off", "info")


@pytest.mark.parametrize(
    ("mode", "log_level", "enabled"),
    [
        ("off", "debug", False),
        ("debug", "info", False),
        ("debug", "debug", True),
        ("info", "info", True),
        ("info", "warning", False),
    ],
)
def test_the_access_log_mode_and_log_level_decide_whether_lines_are_built(
    mode: str, log_level: str, enabled: bool
) -> None:
    """Lines are built only when the log level lets them through; ``off``: never."""
    configure_access_log(mode, log_level)
    assert calls.access_log_enabled() is enabled


def count(protocol: str, code: str) -> float:
    labels = {
        "protocol": protocol,
        "grpc_type": "unary",
        "grpc_service": "ledgerd.v1.BalanceService",
        "grpc_method": "ChangeBalance",
        "grpc_code": code,
    }
    return REGISTRY.get_sample_value("ledgerd_rpc_requests_total", labels) or 0.0


def test_a_call_is_counted_by_protocol_and_code() -> None:
    """A REST call and a gRPC call of one method are two series, told apart by protocol."""
    before = count("rest", "ALREADY_EXISTS"), count("grpc", "ALREADY_EXISTS")
    MethodCalls("rest", METHOD).record(time.perf_counter(), Outcome("ALREADY_EXISTS"))
    after = count("rest", "ALREADY_EXISTS"), count("grpc", "ALREADY_EXISTS")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 0)


def test_an_access_line_names_the_call_and_never_the_amount() -> None:
    """The line has method, code, duration, peer, request id and key id; not the amount."""
    configure_access_log("info", "info")
    request = pb.ChangeBalanceRequest(request_id="r-1", user_id=7, currency="USD", amount="55.5")
    with capture_logs() as lines:
        MethodCalls("grpc", METHOD).record(
            time.perf_counter(), Outcome("OK", "ipv4:10.0.0.1:4000", request, "key-1")
        )
    (line,) = lines
    assert line["event"] == "call" and line["log_level"] == "info"
    assert {k: line[k] for k in ("protocol", "method", "code", "peer", "request_id", "key_id")} == {
        "protocol": "grpc",
        "method": METHOD,
        "code": "OK",
        "peer": "ipv4:10.0.0.1:4000",
        "request_id": "r-1",
        "key_id": "key-1",
    }
    assert isinstance(line["duration_ms"], float)
    assert "55.5" not in repr(line)


def test_a_batch_shows_its_size_not_its_ids() -> None:
    """ChangeBalances: ``changes`` is the count; no request id is listed."""
    configure_access_log("debug", "debug")
    batch = pb.ChangeBalancesRequest(
        changes=[pb.ChangeBalanceRequest(request_id=f"r-{i}") for i in range(250)]
    )
    with capture_logs() as lines:
        MethodCalls("grpc", "/ledgerd.v1.BalanceService/ChangeBalances").record(
            time.perf_counter(), Outcome("OK", request=batch)
        )
    (line,) = lines
    assert line["changes"] == 250 and "request_id" not in line
    assert line["log_level"] == "debug"


def test_client_chosen_text_is_cut_short() -> None:
    """An oversized request id or key id does not make an oversized line."""
    configure_access_log("info", "info")
    request = pb.GetChangeRequest(request_id="x" * 100_000)
    with capture_logs() as lines:
        MethodCalls("grpc", "/ledgerd.v1.BalanceService/GetChange").record(
            time.perf_counter(), Outcome("INVALID_ARGUMENT", request=request, key_id="k" * 5000)
        )
    (line,) = lines
    assert len(line["request_id"]) == len(line["key_id"]) == calls.MAX_LOGGED_CHARS


def test_no_line_is_written_while_the_access_log_is_off() -> None:
    """Off: the call is counted, nothing is logged."""
    configure_access_log("off", "debug")
    with capture_logs() as lines:
        MethodCalls("grpc", METHOD).record(time.perf_counter(), Outcome("OK"))
    assert lines == []


@pytest.mark.parametrize(
    "request_",
    [pb.TransferRequest(request_id="t-1", memo="secret"), pb.GetTransferRequest(request_id="t-1")],
)
def test_a_transfer_call_shows_its_request_id_only(request_: object) -> None:
    """Transfer and GetTransfer log the transfer's id, as the change calls do, and no field."""
    configure_access_log("info", "info")
    with capture_logs() as lines:
        MethodCalls("grpc", "/ledgerd.v1.BalanceService/Transfer").record(
            time.perf_counter(), Outcome("OK", request=request_)
        )
    (line,) = lines
    assert line["request_id"] == "t-1" and "memo" not in line
