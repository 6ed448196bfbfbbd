"""The one error hierarchy of ledgerd, with the stable reason each one reports.

    class                    reason (ErrorInfo)    what happened
    LedgerError              INTERNAL              root; ``retriable``: may trying again help
    ├── InvalidArgument      INVALID_FIELD         malformed fields, each named (batch index too)
    ├── RequestConflict      REQUEST_CONFLICT      a request_id reused with different fields
    ├── RequestNotFound      REQUEST_NOT_FOUND     GetChange of an unknown request_id
    ├── Unauthenticated      SIGNATURE_REJECTED    a missing or bad signature (which check: untold)
    ├── PermissionDenied     SCOPE_MISSING         a valid key used outside its scopes
    ├── Overloaded           OVERLOADED            too much work queued; come back later
    ├── ServerStopping       SERVER_STOPPING       the server is shutting down; call another
    ├── BackendUnavailable   BACKEND_UNAVAILABLE   a backend cannot be reached now (retriable)
    │   ├── StoreUnavailable STORE_UNAVAILABLE
    │   │   └── StoreReadOnly STORE_READ_ONLY      it answers reads but refuses writes
    │   ├── LogUnavailable   LOG_UNAVAILABLE
    │   └── CacheUnavailable CACHE_UNAVAILABLE
    ├── TransientStoreError  STORE_CONTENTION      deadlock, lock wait timeout, a lost race
    ├── StoreRejected        STORE_REJECTED        the database refuses these values, every time
    ├── Fenced               FENCED                lost ownership of a partition or a lock
    ├── PoisonMessage        POISON_MESSAGE        an event-log message that can never be applied
    ├── DecisionFailed       DECISION_FAILED       deciding a batch raised an unexpected exception
    ├── SchemaTooNew         SCHEMA_TOO_NEW        the database was migrated by a newer ledgerd
    ├── MissingExtra         MISSING_EXTRA         a configured backend's driver is not installed
    ├── ShardMismatch        SHARD_MISMATCH        a shard records another place in the shard map
    └── DataDirLocked        DATA_DIR_LOCKED       another process serves from the data directory

The reasons (``error_reason`` on each class) are part of the API: clients
branch on them, so a reason is never renamed. ``details()`` is what a client
may be told beyond the message (never a secret, never why a signature failed).
Driver exceptions are translated into these at each adapter's boundary; the
API maps them to gRPC codes and google.rpc.Status details in one table
(``ledgerd.api.errors``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, NamedTuple

# google.rpc.ErrorInfo.domain of every reason above: the service, as no one DNS name is.
ERROR_DOMAIN = "ledgerd"


class LedgerError(Exception):
    """Root of every error ledgerd raises on purpose."""

    retriable: bool = False
    error_reason: ClassVar[str] = "INTERNAL"

    def details(self) -> Mapping[str, str]:
        """What a client may learn beyond the message (google.rpc.ErrorInfo metadata)."""
        return {}


class FieldViolation(NamedTuple):
    """One malformed field: its path (``changes[3].amount``) and what is wrong with it."""

    field: str
    description: str


class InvalidArgument(LedgerError):
    """Malformed request fields, every one of them; ``field`` names the first.

    The message is the first violation (``amount: must be greater than zero``),
    followed by how many more there are; ``violations`` lists them all.
    """

    error_reason = "INVALID_FIELD"

    def __init__(self, field: str, problem: str, *more: FieldViolation) -> None:
        others = f" (and {len(more)} more invalid field{'s' if len(more) > 1 else ''})"
        super().__init__(f"{field}: {problem}" + (others if more else ""))
        self.field = field
        self.problem = problem
        self.violations = (FieldViolation(field, problem), *more)

    @classmethod
    def of(cls, violations: Iterable[FieldViolation]) -> InvalidArgument:
        """One error for several violations (at least one), in the order given."""
        first, *more = violations
        return cls(first.field, first.description, *more)

    def at_index(self, prefix: str, index: int) -> InvalidArgument:
        """The same error, located inside a repeated field."""
        return InvalidArgument.of(
            FieldViolation(f"{prefix}[{index}].{v.field}", v.description) for v in self.violations
        )

    def details(self) -> Mapping[str, str]:
        # The BadRequest detail may be cut short to fit gRPC's trailer; this tells how many.
        return {"field_violations": str(len(self.violations))}


class RequestConflict(LedgerError):
    """The request_id was used before with different fields."""

    error_reason = "REQUEST_CONFLICT"

    def __init__(self, request_id: str, location: str = "request_id") -> None:
        super().__init__(f"{location}: {request_id!r} already exists with different fields")
        self.request_id = request_id
        self.location = location

    def details(self) -> Mapping[str, str]:
        return {"request_id": self.request_id, "field": self.location}


class RequestNotFound(LedgerError):
    """No change request has this request_id."""

    error_reason = "REQUEST_NOT_FOUND"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request_id: no change request {request_id!r}")
        self.request_id = request_id

    def details(self) -> Mapping[str, str]:
        return {"request_id": self.request_id}


class Unauthenticated(LedgerError):
    """The request's signature was missing or did not verify.

    ``reason`` is for metrics and logs only; clients always get the same message
    and the same ``error_reason``, with no details.
    """

    error_reason = "SIGNATURE_REJECTED"
    public_message = "request signature rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(self.public_message)
        self.reason = reason


class PermissionDenied(LedgerError):
    """A correctly signed request whose key lacks the scope for the method."""

    error_reason = "SCOPE_MISSING"

    def __init__(self, message: str, *, key_id: str = "", scope: str = "") -> None:
        super().__init__(message)
        self.key_id = key_id
        self.scope = scope

    def details(self) -> Mapping[str, str]:
        # The signature was valid, so the key id and the scope it lacks tell the caller nothing new.
        named = {"key_id": self.key_id, "scope": self.scope}
        return {name: value for name, value in named.items() if value}


class Overloaded(LedgerError):
    """The server has more work queued than it accepts; retry later."""

    retriable = True
    error_reason = "OVERLOADED"


class ServerStopping(LedgerError):
    """The server is shutting down: it ends the calls that never finish by themselves (event
    tails), so its graceful stop does not wait them out; call another server."""

    retriable = True
    error_reason = "SERVER_STOPPING"


class BackendUnavailable(LedgerError):
    """A backend cannot be reached; nothing was acknowledged."""

    retriable = True
    error_reason = "BACKEND_UNAVAILABLE"


class StoreUnavailable(BackendUnavailable):
    """The store (database) cannot be reached."""

    error_reason = "STORE_UNAVAILABLE"


class LogUnavailable(BackendUnavailable):
    """The event log cannot be reached."""

    error_reason = "LOG_UNAVAILABLE"


class CacheUnavailable(BackendUnavailable):
    """The cache cannot be reached; readers fall back to the store."""

    error_reason = "CACHE_UNAVAILABLE"


class TransientStoreError(LedgerError):
    """Deadlock, lock wait timeout or a lost insert race: the same work may succeed."""

    retriable = True
    error_reason = "STORE_CONTENTION"


class StoreRejected(LedgerError):
    """The database refused the values written, and would refuse them again: out of range,
    too long, an incorrect value, a NULL, a CHECK or foreign-key constraint.

    Not retriable: the same write fails the same way. The consumer finds the record that
    carries such values and dead-letters it (``consumer/isolate.py``); anywhere else it is
    a request the schema cannot hold. ``code`` is the engine's error code (0 if none).
    """

    error_reason = "STORE_REJECTED"

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class Fenced(LedgerError):
    """A newer owner took over a partition or lock; this worker's write was refused."""

    error_reason = "FENCED"

    def __init__(self, what: str, partition: int | None = None) -> None:
        super().__init__(f"fenced: {what} is owned by a newer epoch")
        self.what = what
        self.partition = partition


class PoisonMessage(LedgerError):
    """An event-log message that can never be applied (undecodable or invalid)."""

    error_reason = "POISON_MESSAGE"


class DecisionFailed(LedgerError):
    """Deciding a batch raised an exception no rule expects (a bug, or a message no rule
    can take). Not retriable as is: the consumer finds the record, counts the failure in
    the store and dead-letters the record after ``max_decision_failures`` tries."""

    error_reason = "DECISION_FAILED"


class SchemaTooNew(LedgerError):
    """The database records a schema version newer than this code knows.

    Not retriable: an older ledgerd must not write to a schema it does not
    understand; deploy the newer version (or restore the database).
    """

    error_reason = "SCHEMA_TOO_NEW"

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this ledgerd knows"
            f" (up to {known}); run a ledgerd that knows version {found}"
        )
        self.found = found
        self.known = known

    def details(self) -> Mapping[str, str]:
        return {"found_version": str(self.found), "known_version": str(self.known)}


class MissingExtra(LedgerError):
    """A configured backend needs a driver from an extra that is not installed.

    Not retriable: installing the extra is the fix, and the message says how.
    """

    error_reason = "MISSING_EXTRA"

    def __init__(self, extra: str, needed_by: str, driver: str) -> None:
        super().__init__(
            f"{needed_by} needs {driver}, which is not installed: pip install 'ledgerd[{extra}]'"
        )
        self.extra = extra

    def details(self) -> Mapping[str, str]:
        return {"extra": self.extra}


class ShardMismatch(LedgerError):
    """A database shard records a place in the shard map other than the configured one
    (the list of shards reordered, the shard or partition count changed), or was never
    migrated. Not retriable: the process refuses to start rather than write a partition's
    rows into a database that does not own it.
    """

    error_reason = "SHARD_MISMATCH"

    def __init__(self, shard_id: int, where: str, problem: str) -> None:
        super().__init__(f"shard {shard_id} ({where}): {problem}")
        self.shard_id = shard_id
        self.where = where

    def details(self) -> Mapping[str, str]:
        return {"shard_id": str(self.shard_id)}


class StoreReadOnly(StoreUnavailable):
    """The store answers reads but refuses writes: a read-only or failed-over database (a
    replica), a user without write privileges, or an embedded store whose writes stopped
    after an I/O error, a full disk or corruption (until a restart, see
    ``ledgerd.support.sqlite``). Nothing was written; UNAVAILABLE like any store outage.
    """

    error_reason = "STORE_READ_ONLY"


class DataDirLocked(LedgerError):
    """Another process holds the embedded data directory (its SQLite store and log): two
    processes writing one directory would diverge. Not retriable while that one runs.
    """

    error_reason = "DATA_DIR_LOCKED"

    def __init__(self, lock_file: str, holder: str) -> None:
        super().__init__(
            f"the data directory is in use by another ledgerd process ({holder} holds"
            f" {lock_file}); stop it first, or give this one its own LEDGERD_DATA_DIR"
        )
        self.lock_file = lock_file
