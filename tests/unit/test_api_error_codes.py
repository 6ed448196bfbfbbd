"""Domain errors map to gRPC status codes through one table."""

import grpc
import pytest

from ledgerd import errors
from ledgerd.api.errors import status_of


def all_subclasses(cls: type[errors.LedgerError]) -> list[type[errors.LedgerError]]:
    found: list[type[errors.LedgerError]] = []
    for subclass in cls.__subclasses__():
        found.append(subclass)
        found.extend(all_subclasses(subclass))
    return found


def bare_instance(cls: type[errors.LedgerError]) -> errors.LedgerError:
    # Constructors take different arguments; mapping only looks at the type.
    return cls.__new__(cls)


LEDGER_ERRORS = [
    cls for cls in all_subclasses(errors.LedgerError) if cls.__module__ == errors.__name__
]


@pytest.mark.parametrize(
    "error_type",
    [cls for cls in LEDGER_ERRORS if cls not in (errors.PoisonMessage, errors.DecisionFailed)],
    ids=lambda cls: cls.__name__,
)
def test_every_ledger_error_has_a_status_code(error_type: type[errors.LedgerError]) -> None:
    """Each LedgerError subclass maps to a specific code, so a new class needs a mapping."""
    assert status_of(bare_instance(error_type)) != grpc.StatusCode.INTERNAL


def test_poison_message_is_internal() -> None:
    """A poison message never reaches a client as anything but INTERNAL."""
    assert status_of(errors.PoisonMessage("bad")) == grpc.StatusCode.INTERNAL


def test_a_failed_decision_is_internal() -> None:
    """A consumer's decision failure (a bug) never reaches a client as anything but INTERNAL."""
    assert status_of(errors.DecisionFailed("boom")) == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument("amount", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.RequestConflict("r1"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.RequestNotFound("r1"), grpc.StatusCode.NOT_FOUND),
        (errors.Overloaded(), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.StoreUnavailable(), grpc.StatusCode.UNAVAILABLE),
        (errors.LogUnavailable(), grpc.StatusCode.UNAVAILABLE),
        (errors.CacheUnavailable(), grpc.StatusCode.UNAVAILABLE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_error_maps_to_the_code_design_md_names(
    error: errors.LedgerError, code: grpc.StatusCode
) -> None:
    """Errors named in docs/api.md map to the gRPC code it gives them."""
    assert status_of(error) == code


def test_the_hierarchy_walk_finds_nested_subclasses() -> None:
    """The walk reaches grandchildren such as StoreUnavailable, not only direct subclasses."""
    assert errors.StoreUnavailable in LEDGER_ERRORS
