"""Domain errors to gRPC status codes and google.rpc.Status details: the one table.

Every error carries a ``google.rpc.Status`` (Google AIP-193) in the
``grpc-status-details-bin`` trailer, and the REST gateway sends the same
details in its error body:

* ``google.rpc.ErrorInfo`` always: the class's stable ``error_reason``, the
  domain ``ledgerd``, and the error's ``details()`` as metadata;
* ``google.rpc.BadRequest`` for INVALID_ARGUMENT: one field violation per bad
  field (every bad item of a batch), cut short past ``MAX_VIOLATION_BYTES``.
"""

from __future__ import annotations

from typing import Any, NoReturn

# `from google.rpc import …` hides the modules from mypy: types-protobuf's google-stubs
# claims the `google` package, so the submodules are imported by their full names.
import google.rpc.error_details_pb2 as error_details_pb2  # noqa: PLR0402
import google.rpc.status_pb2 as status_pb2  # noqa: PLR0402
import grpc
from google.protobuf import json_format
from grpc_status import rpc_status

from ledgerd import errors

# Most specific first: the first matching class wins.
STATUS_OF_ERROR: tuple[tuple[type[errors.LedgerError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.RequestConflict, grpc.StatusCode.ALREADY_EXISTS),
    (errors.RequestNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ServerStopping, grpc.StatusCode.UNAVAILABLE),
    (errors.TransientStoreError, grpc.StatusCode.UNAVAILABLE),
    (errors.Fenced, grpc.StatusCode.UNAVAILABLE),
    (errors.PoisonMessage, grpc.StatusCode.INTERNAL),
    (errors.DecisionFailed, grpc.StatusCode.INTERNAL),
    # The schema cannot hold values the API accepted (a constraint an operator added).
    (errors.StoreRejected, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.SchemaTooNew, grpc.StatusCode.FAILED_PRECONDITION),
    # Stops start-up before any call is served; mapped so that the table stays total.
    (errors.MissingExtra, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ShardMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.DataDirLocked, grpc.StatusCode.FAILED_PRECONDITION),
)

# gRPC clients start refusing trailers past 8 KiB (grpc.max_metadata_size; always past 16 KiB),
# and the details travel base64-encoded beside the message: 4 KiB of violations stays inside.
# A batch of 10,000 bad items is cut short; ErrorInfo's `field_violations` tells the total.
MAX_VIOLATION_BYTES = 4096


def status_of(error: errors.LedgerError) -> grpc.StatusCode:
    for error_type, code in STATUS_OF_ERROR:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(error: errors.LedgerError) -> status_pb2.Status:
    """The google.rpc.Status of an error: its code, its message, and its details."""
    status = status_pb2.Status(code=status_of(error).value[0], message=str(error))
    info = error_details_pb2.ErrorInfo(
        reason=error.error_reason, domain=errors.ERROR_DOMAIN, metadata=error.details()
    )
    status.details.add().Pack(info)
    if isinstance(error, errors.InvalidArgument):
        status.details.add().Pack(_bad_request(error.violations))
    return status


def _bad_request(violations: tuple[errors.FieldViolation, ...]) -> error_details_pb2.BadRequest:
    bad_request = error_details_pb2.BadRequest()
    size = 0
    for field, description in violations:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field, description=description
        )
        size += violation.ByteSize() + 3  # its tag and length prefix
        if size > MAX_VIOLATION_BYTES and bad_request.field_violations:
            break
        bad_request.field_violations.append(violation)
    return bad_request


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: errors.LedgerError) -> NoReturn:
    """End the call with the error's status code, message and details trailer."""
    status = rpc_status.to_status(rich_status(error))
    await context.abort(status.code, status.details, status.trailing_metadata)


def details_json(status: status_pb2.Status) -> list[dict[str, Any]]:
    """The details in protobuf's JSON mapping (with ``@type``), as the REST gateway writes them."""
    return [
        json_format.MessageToDict(detail, preserving_proto_field_name=True)
        for detail in status.details
    ]
