"""What a client learns from a failed call: the google.rpc.Status details, decoded.

ledgerd sends every error's details in the ``grpc-status-details-bin`` trailer
(Google AIP-193): ``google.rpc.ErrorInfo`` with a stable ``reason``, and for
INVALID_ARGUMENT ``google.rpc.BadRequest`` with one violation per bad field.
``LedgerdRpcError`` wraps the ``grpc.RpcError`` of a call and exposes them as
typed fields, while staying a ``grpc.RpcError`` with the same ``code()`` and
``details()`` for code written against plain gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# `from google.rpc import …` hides the modules from mypy (types-protobuf's stubs claim `google`).
import google.rpc.error_details_pb2 as error_details_pb2  # noqa: PLR0402
import google.rpc.status_pb2 as status_pb2  # noqa: PLR0402
import grpc
from google.protobuf.message import DecodeError

from ledgerd.errors import FieldViolation

DETAILS_TRAILER = "grpc-status-details-bin"


class LedgerdRpcError(grpc.RpcError):
    """A failed call, with its status details as typed fields.

    ``field_violations``: every bad field as ``(field, description)``, e.g.
    ``("changes[5].amount", "must be greater than zero")``; empty unless
    INVALID_ARGUMENT. ``reason``: the stable UPPER_SNAKE reason
    (``REQUEST_CONFLICT``), ``""`` when the answer had none (an error from gRPC
    itself, such as DEADLINE_EXCEEDED). ``metadata``: the reason's context
    (``{"request_id": "order-1"}``). ``status``: the whole google.rpc.Status.
    """

    def __init__(self, error: grpc.RpcError) -> None:
        super().__init__(error)
        # grpc types RpcError without its Call methods; every RpcError a call raises has them.
        self._call: Any = error
        self.status = _rich_status(self._call)
        self.field_violations: tuple[FieldViolation, ...] = ()
        self.reason = ""
        self.domain = ""
        self.metadata: Mapping[str, str] = {}
        for detail in self.status.details if self.status is not None else ():
            info = error_details_pb2.ErrorInfo()
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(info):  # False when the detail is of another type
                self.reason, self.domain = info.reason, info.domain
                self.metadata = dict(info.metadata)
            elif detail.Unpack(bad_request):
                self.field_violations = tuple(
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                )

    def code(self) -> grpc.StatusCode:
        code: grpc.StatusCode = self._call.code()
        return code

    def details(self) -> str:
        """The status message, as on grpc.RpcError (``message`` is the same text)."""
        return str(self._call.details() or "")

    @property
    def message(self) -> str:
        return self.details()

    def trailing_metadata(self) -> Any:
        return self._call.trailing_metadata()

    def initial_metadata(self) -> Any:
        return self._call.initial_metadata()

    def debug_error_string(self) -> str:
        return str(self._call.debug_error_string())

    def __str__(self) -> str:
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.code().name}{reason}: {self.message}"


def _rich_status(call: Any) -> status_pb2.Status | None:
    """The google.rpc.Status in the call's trailer, if it has one that matches its code."""
    for key, value in call.trailing_metadata() or ():
        if key != DETAILS_TRAILER or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        # A proxy may have replaced the call's status; details of another status would mislead.
        return status if status.code == call.code().value[0] else None
    return None
