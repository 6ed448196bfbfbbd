"""google.rpc.Status details: built from LedgerErrors, and read back by the client."""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
import pytest
from grpc_status import rpc_status

from ledgerd import errors
from ledgerd.api.errors import MAX_VIOLATION_BYTES, details_json, rich_status
from ledgerd.api.handlers import Handlers
from ledgerd.errors import FieldViolation, InvalidArgument
from ledgerd.rpc_errors import LedgerdRpcError
from ledgerd.service import LedgerService
from ledgerd.v1 import balance_pb2 as pb


def _subclasses(cls: type[errors.LedgerError]) -> list[type[errors.LedgerError]]:
    return [found for sub in cls.__subclasses__() for found in (sub, *_subclasses(sub))]


LEDGER_ERRORS = [
    cls for cls in _subclasses(errors.LedgerError) if cls.__module__ == errors.__name__
]


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    (info,) = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    unpacked = error_details_pb2.ErrorInfo()
    info.Unpack(unpacked)
    return unpacked


def bad_request(status: status_pb2.Status) -> error_details_pb2.BadRequest:
    (detail,) = [d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    unpacked = error_details_pb2.BadRequest()
    detail.Unpack(unpacked)
    return unpacked


@pytest.mark.parametrize("error_type", LEDGER_ERRORS, ids=lambda cls: cls.__name__)
def test_every_ledger_error_has_its_own_upper_snake_reason(
    error_type: type[errors.LedgerError],
) -> None:
    """Each class declares a reason of its own (not inherited), in UPPER_SNAKE case."""
    assert "error_reason" in vars(error_type)
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*[A-Z0-9]", error_type.error_reason)


def test_reasons_are_distinct() -> None:
    """No two classes share a reason, so a reason identifies what happened."""
    reasons = [cls.error_reason for cls in [errors.LedgerError, *LEDGER_ERRORS]]
    assert len(reasons) == len(set(reasons))


def test_the_table_in_the_errors_docstring_states_each_class_reason() -> None:
    """The hierarchy drawn in errors.py names each class with the reason it really has."""
    doc = errors.__doc__ or ""
    drawn = dict(re.findall(r"(?:── |^ {4})([A-Z][A-Za-z]+) +([A-Z][A-Z_]+)\b", doc, re.M))
    expected = {cls.__name__: cls.error_reason for cls in [errors.LedgerError, *LEDGER_ERRORS]}
    assert drawn == expected


def test_invalid_argument_carries_every_violation_and_an_error_info() -> None:
    """BadRequest lists each field; ErrorInfo has INVALID_FIELD and the violation count."""
    error = InvalidArgument("user_id", "bad", FieldViolation("amount", "worse"))
    status = rich_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == str(error)
    assert [(v.field, v.description) for v in bad_request(status).field_violations] == [
        ("user_id", "bad"),
        ("amount", "worse"),
    ]
    info = error_info(status)
    assert (info.reason, info.domain) == ("INVALID_FIELD", "ledgerd")
    assert dict(info.metadata) == {"field_violations": "2"}


def test_a_huge_batch_of_violations_is_cut_to_fit_grpc_trailers() -> None:
    """10,000 bad items: the first violations in order, within the budget, and the true count."""
    violations = [
        FieldViolation(f"changes[{i}].amount", "must be greater than zero") for i in range(10_000)
    ]
    status = rich_status(InvalidArgument.of(violations))
    listed = bad_request(status).field_violations
    assert 0 < len(listed) < 10_000
    assert [v.field for v in listed] == [v.field for v in violations[: len(listed)]]
    assert bad_request(status).ByteSize() <= MAX_VIOLATION_BYTES
    assert status.ByteSize() < 6 * 1024
    assert error_info(status).metadata["field_violations"] == "10000"


def test_conflict_carries_the_request_id_and_where_it_is() -> None:
    """REQUEST_CONFLICT's metadata names the request_id and its field."""
    info = error_info(rich_status(errors.RequestConflict("order-1", "changes[2].request_id")))
    assert info.reason == "REQUEST_CONFLICT"
    assert dict(info.metadata) == {"request_id": "order-1", "field": "changes[2].request_id"}


def test_unauthenticated_details_never_tell_which_check_failed() -> None:
    """Every signature failure gives the same status bytes: no hidden reason in the details."""
    statuses = {
        rich_status(errors.Unauthenticated(reason)).SerializeToString()
        for reason in ("missing", "expired", "bad_signature", "replayed")
    }
    (only,) = statuses
    status = status_pb2.Status.FromString(only)
    assert status.message == errors.Unauthenticated.public_message
    info = error_info(status)
    assert (info.reason, dict(info.metadata)) == ("SIGNATURE_REJECTED", {})


def test_permission_denied_names_the_missing_scope() -> None:
    """SCOPE_MISSING carries the key id and the scope the method needs."""
    error = errors.PermissionDenied("key r may not call ChangeBalance", key_id="r", scope="write")
    info = error_info(rich_status(error))
    assert (info.reason, dict(info.metadata)) == (
        "SCOPE_MISSING",
        {"key_id": "r", "scope": "write"},
    )


def test_other_errors_carry_only_error_info() -> None:
    """A non-INVALID_ARGUMENT error has one detail, an ErrorInfo with the class's reason."""
    status = rich_status(errors.StoreUnavailable("mysql: gone"))
    assert len(status.details) == 1
    assert error_info(status).reason == "STORE_UNAVAILABLE"


def test_details_json_uses_proto_field_names_and_type_urls() -> None:
    """REST details: protobuf JSON with @type and snake_case (field_violations)."""
    details = details_json(rich_status(InvalidArgument("amount", "bad")))
    assert details == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "INVALID_FIELD",
            "domain": "ledgerd",
            "metadata": {"field_violations": "1"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "field_violations": [{"field": "amount", "description": "bad"}],
        },
    ]


class _Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an invalid request reached the service ({name})")


def batch_error(changes: list[pb.ChangeBalanceRequest]) -> InvalidArgument:
    handlers = Handlers(cast(LedgerService, _Unused()), cast(Any, _Unused()))
    with pytest.raises(InvalidArgument) as excinfo:
        asyncio.run(handlers.change_balances(pb.ChangeBalancesRequest(changes=changes), None))
    return excinfo.value


def good_change(index: int) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=f"r{index}", user_id=1, currency="USD", type=pb.DEPOSIT, amount="1"
    )


def test_a_batch_names_every_bad_item_and_every_bad_field() -> None:
    """Bad items at 0 and 5 (two bad fields in 5): three violations, by index, in order."""
    changes = [good_change(i) for i in range(7)]
    changes[0].amount = "0"
    changes[5].currency = "usd"
    changes[5].memo = "m" * 257
    error = batch_error(changes)
    assert [v.field for v in error.violations] == [
        "changes[0].amount",
        "changes[5].currency",
        "changes[5].memo",
    ]
    assert str(error).startswith("changes[0].amount: must be greater than zero")


def test_get_balance_and_list_journal_name_every_bad_field() -> None:
    """The read RPCs collect their bad fields too."""
    handlers = Handlers(cast(LedgerService, _Unused()), cast(Any, _Unused()))
    with pytest.raises(InvalidArgument) as balance:
        asyncio.run(handlers.get_balance(pb.GetBalanceRequest(user_id=0, currency="usd")))
    assert [v.field for v in balance.value.violations] == ["user_id", "currency"]
    with pytest.raises(InvalidArgument) as journal:
        asyncio.run(handlers.list_journal(pb.ListJournalRequest(currency="", limit=1001)))
    assert [v.field for v in journal.value.violations] == ["user_id", "currency", "limit"]


class FakeFailedCall(grpc.RpcError):
    """What grpc raises for a failed call: an RpcError that is also a grpc.Call."""

    def __init__(self, status: grpc.Status) -> None:
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> Any:
        return self._status.trailing_metadata

    def initial_metadata(self) -> Any:
        return ()

    def debug_error_string(self) -> str:
        return "debug"


def test_client_error_exposes_the_details_as_typed_fields() -> None:
    """LedgerdRpcError decodes what rich_status sent: violations, reason, metadata."""
    sent = InvalidArgument("changes[0].amount", "bad", FieldViolation("changes[5].type", "worse"))
    error = LedgerdRpcError(FakeFailedCall(rpc_status.to_status(rich_status(sent))))
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == error.details() == str(sent)
    assert error.field_violations == (
        ("changes[0].amount", "bad"),
        ("changes[5].type", "worse"),
    )
    assert (error.reason, error.domain, error.metadata) == (
        "INVALID_FIELD",
        "ledgerd",
        {"field_violations": "2"},
    )


def test_client_error_without_a_details_trailer_has_empty_fields() -> None:
    """An error from gRPC itself (no trailer) still wraps: no reason, no violations."""
    plain = grpc.StatusCode.DEADLINE_EXCEEDED
    error = LedgerdRpcError(FakeFailedCall(cast(grpc.Status, _Status(plain, "Deadline", ()))))
    assert (error.code(), error.message) == (plain, "Deadline")
    assert (error.reason, error.metadata, error.field_violations, error.status) == (
        "",
        {},
        (),
        None,
    )


def test_client_ignores_details_of_a_different_status_code() -> None:
    """A trailer whose code disagrees with the call's (a proxy's rewrite) is not trusted."""
    trailer = rpc_status.to_status(rich_status(errors.RequestNotFound("r1"))).trailing_metadata
    call = FakeFailedCall(cast(grpc.Status, _Status(grpc.StatusCode.INTERNAL, "x", trailer)))
    assert LedgerdRpcError(call).reason == ""


class _Status:
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata
