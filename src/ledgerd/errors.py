"""The one error hierarchy of ledgerd.

    LedgerError                      root; ``retriable`` says whether trying again can help
    ├── InvalidArgument              a malformed field (names the field, and the batch index)
    ├── RequestConflict              a request_id reused with different fields
    ├── RequestNotFound              GetChange of an unknown request_id
    ├── Unauthenticated              a missing or bad signature (the reason is never told)
    ├── PermissionDenied             a valid key used outside its scopes
    ├── Overloaded                   too much work queued; come back later
    ├── BackendUnavailable           a backend cannot be reached right now (retriable)
    │   ├── StoreUnavailable
    │   ├── LogUnavailable
    │   └── CacheUnavailable
    ├── TransientStoreError          deadlock, lock wait timeout, a lost race (retriable)
    ├── Fenced                       this worker lost ownership of a partition or a lock
    ├── PoisonMessage                an event-log message that can never be applied
    └── SchemaTooNew                 the database was migrated by a newer ledgerd

Driver exceptions are translated into these at each adapter's boundary; the
API maps them to gRPC codes in one table (``ledgerd.api.errors``).
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error ledgerd raises on purpose."""

    retriable: bool = False


class InvalidArgument(LedgerError):
    """A request field is malformed; ``field`` names it (``changes[3].amount``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def at_index(self, prefix: str, index: int) -> InvalidArgument:
        """The same error, located inside a repeated field."""
        return InvalidArgument(f"{prefix}[{index}].{self.field}", self.problem)


class RequestConflict(LedgerError):
    """The request_id was used before with different fields."""

    def __init__(self, request_id: str, location: str = "request_id") -> None:
        super().__init__(f"{location}: {request_id!r} already exists with different fields")
        self.request_id = request_id


class RequestNotFound(LedgerError):
    """No change request has this request_id."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request_id: no change request {request_id!r}")
        self.request_id = request_id


class Unauthenticated(LedgerError):
    """The request's signature was missing or did not verify.

    ``reason`` is for metrics and logs only; clients always get the same message.
    """

    public_message = "request signature rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(self.public_message)
        self.reason = reason


class PermissionDenied(LedgerError):
    """A correctly signed request whose key lacks the scope for the method."""


class Overloaded(LedgerError):
    """The server has more work queued than it accepts; retry later."""

    retriable = True


class BackendUnavailable(LedgerError):
    """A backend cannot be reached; nothing was acknowledged."""

    retriable = True


class StoreUnavailable(BackendUnavailable):
    """The store (database) cannot be reached."""


class LogUnavailable(BackendUnavailable):
    """The event log cannot be reached."""


class CacheUnavailable(BackendUnavailable):
    """The cache cannot be reached; readers fall back to the store."""


class TransientStoreError(LedgerError):
    """Deadlock, lock wait timeout or a lost insert race: the same work may succeed."""

    retriable = True


class Fenced(LedgerError):
    """A newer owner took over a partition or lock; this worker's write was refused."""

    def __init__(self, what: str, partition: int | None = None) -> None:
        super().__init__(f"fenced: {what} is owned by a newer epoch")
        self.what = what
        self.partition = partition


class PoisonMessage(LedgerError):
    """An event-log message that can never be applied (undecodable or invalid)."""


class SchemaTooNew(LedgerError):
    """The database records a schema version newer than this code knows.

    Not retriable: an older ledgerd must not write to a schema it does not
    understand; deploy the newer version (or restore the database).
    """

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this ledgerd knows"
            f" (up to {known}); run a ledgerd that knows version {found}"
        )
        self.found = found
        self.known = known
