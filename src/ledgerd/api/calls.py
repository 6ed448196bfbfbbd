"""What every API call leaves behind: its metrics and, when switched on, an access-log line.

Both servers call it once per call, at one place each: the gRPC gatekeeper
(every method of every service, health and reflection included) and the REST
gateway's endpoint. Metrics follow the grpc-ecosystem conventions
(go-grpc-prometheus): ``grpc_type``, ``grpc_service``, ``grpc_method``,
``grpc_code``, plus ``protocol`` (``grpc`` or ``rest``), as a REST call runs the
same BalanceService method.

The access line names the call, its code, duration, peer, the request id of a
ChangeBalance / GetChange (a batch: how many changes, not its ids) and the key
id of a signed call; never a signature, secret or amount.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ledgerd import metrics
from ledgerd.v1 import balance_pb2 as pb

_LEVELS = ("debug", "info", "warning", "error")
# Client-chosen text is cut to this length in the access log (request ids are at most
# 64 characters when valid; an invalid one must not make a line of megabytes).
MAX_LOGGED_CHARS = 128

_log = structlog.get_logger("ledgerd.access")
# The bound method that writes an access line, or None while the access log is off.
# Resolved once by configure_access_log, so a call with the log off pays one test.
_write: Callable[..., Any] | None = None


def configure_access_log(mode: str, log_level: str) -> None:
    """``mode`` off, info or debug: the level access lines are written at; lines below
    ``log_level`` are not even built."""
    global _write  # noqa: PLW0603 (process-wide, set once at startup like the log config)
    if mode == "off" or _LEVELS.index(mode) < _LEVELS.index(log_level):
        _write = None
    else:
        _write = _log.info if mode == "info" else _log.debug


def access_log_enabled() -> bool:
    return _write is not None


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one call ended, as the access log shows it."""

    code: str
    peer: str | None = None
    request: object = None  # the decoded request message, if any
    key_id: str | None = None
    route: str | None = None  # a REST call's "{HTTP method} {path template}"


class MethodCalls:
    """Records the calls of one method; built once per method, when its handler is set up."""

    def __init__(self, protocol: str, full_method: str, grpc_type: str = "unary") -> None:
        self.protocol = protocol
        self.full_method = full_method
        self.service, self.method = split_method(full_method)
        self.grpc_type = grpc_type
        labels = {
            "protocol": protocol,
            "grpc_type": grpc_type,
            "grpc_service": self.service,
            "grpc_method": self.method,
        }
        self._labels = labels
        self._latency = metrics.RPC_LATENCY.labels(**labels)
        self._requests: dict[str, Any] = {}  # grpc_code → bound counter

    def record(self, started: float, outcome: Outcome) -> None:
        """Count a call that began at ``started`` (``time.perf_counter()``) and log it."""
        elapsed_s = time.perf_counter() - started
        self._latency.observe(elapsed_s)
        counter = self._requests.get(outcome.code)
        if counter is None:
            counter = metrics.RPC_REQUESTS.labels(**self._labels, grpc_code=outcome.code)
            self._requests[outcome.code] = counter
        counter.inc()
        write = _write
        if write is not None:
            write("call", **self._access_fields(elapsed_s, outcome))

    def _access_fields(self, elapsed_s: float, outcome: Outcome) -> dict[str, object]:
        fields: dict[str, object] = {
            "protocol": self.protocol,
            "method": self.full_method,
            "code": outcome.code,
            "duration_ms": round(elapsed_s * 1000, 3),
            "peer": outcome.peer,
        }
        if outcome.route is not None:
            fields["route"] = outcome.route
        fields.update(request_fields(outcome.request))
        if outcome.key_id:
            fields["key_id"] = outcome.key_id[:MAX_LOGGED_CHARS]
        return fields


def request_fields(request: object) -> dict[str, object]:
    """What the access log shows of a request: its id, or a batch's size; nothing else."""
    if isinstance(
        request,
        pb.ChangeBalanceRequest | pb.GetChangeRequest | pb.TransferRequest | pb.GetTransferRequest,
    ):
        return {"request_id": request.request_id[:MAX_LOGGED_CHARS]}
    if isinstance(request, pb.ChangeBalancesRequest):
        return {"changes": len(request.changes)}
    return {}
