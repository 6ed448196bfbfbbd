"""Domain errors to gRPC status codes: the one table."""

from __future__ import annotations

import grpc

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
    (errors.TransientStoreError, grpc.StatusCode.UNAVAILABLE),
    (errors.Fenced, grpc.StatusCode.UNAVAILABLE),
    (errors.PoisonMessage, grpc.StatusCode.INTERNAL),
    (errors.SchemaTooNew, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_of(error: errors.LedgerError) -> grpc.StatusCode:
    for error_type, code in STATUS_OF_ERROR:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL
