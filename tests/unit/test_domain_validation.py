"""Field rules for incoming requests: each failure names its field."""

from typing import Any

import pytest

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import CLIENT_CHANGE_TYPES, ChangeRequest, ChangeType
from ledgerd.domain.validation import FieldChecks, validate_change, validate_journal_limit
from ledgerd.errors import FieldViolation, InvalidArgument


def valid_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "user_id": 42,
        "currency": "USD",
        "change_type": int(ChangeType.DEPOSIT),
        "amount": "1.5",
        "memo": "",
    }
    fields.update(overrides)
    return fields


def test_validate_change_builds_a_change_request() -> None:
    """Valid raw fields become a ChangeRequest with the amount in scaled units."""
    request = validate_change(**valid_fields(memo="hello"))
    assert request == ChangeRequest("req-1", 42, "USD", ChangeType.DEPOSIT, SCALE * 3 // 2, "hello")


def test_validate_change_takes_keyword_arguments_only() -> None:
    """Positional arguments are refused, so fields cannot be swapped silently."""
    with pytest.raises(TypeError):
        validate_change("req-1", 42, "USD", 1, "1", "")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("argument", "value", "field"),
    [
        pytest.param("request_id", "", "request_id", id="request_id-empty"),
        pytest.param("request_id", "a" * 65, "request_id", id="request_id-65-chars"),
        pytest.param("request_id", "a b", "request_id", id="request_id-space"),
        pytest.param("request_id", "\u00e9", "request_id", id="request_id-non-ascii"),
        pytest.param("user_id", 0, "user_id", id="user_id-zero"),
        pytest.param("user_id", 2**64, "user_id", id="user_id-above-uint64"),
        pytest.param("currency", "usd", "currency", id="currency-lowercase"),
        pytest.param("currency", "", "currency", id="currency-empty"),
        pytest.param("currency", "A" * 17, "currency", id="currency-17-chars"),
        pytest.param("currency", "US-D", "currency", id="currency-dash"),
        pytest.param("change_type", 0, "type", id="type-unspecified"),
        pytest.param("change_type", 10, "type", id="type-unknown"),
        pytest.param("change_type", 6, "type", id="type-transfer-leg"),
        pytest.param("amount", "0", "amount", id="amount-zero"),
        pytest.param("amount", "-1", "amount", id="amount-negative"),
        pytest.param("memo", "m" * 257, "memo", id="memo-257-chars"),
    ],
)
def test_validate_change_names_the_malformed_field(argument: str, value: Any, field: str) -> None:
    """A malformed field raises InvalidArgument naming that field."""
    with pytest.raises(InvalidArgument) as excinfo:
        validate_change(**valid_fields(**{argument: value}))
    assert excinfo.value.field == field


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        pytest.param("request_id", "a" * 64, id="request_id-64-chars"),
        pytest.param("request_id", "Az09._:-", id="request_id-every-symbol"),
        pytest.param("user_id", 2**64 - 1, id="user_id-max-uint64"),
        pytest.param("currency", "A" * 16, id="currency-16-chars"),
        pytest.param("currency", "USDT0", id="currency-digits"),
        pytest.param("memo", "m" * 256, id="memo-256-chars"),
        pytest.param("memo", "\u00e9\u4e16\U0001f600\u00fc" * 64, id="memo-256-multibyte-chars"),
    ],
)
def test_validate_change_accepts_boundary_values(argument: str, value: Any) -> None:
    """Values at the edge of each rule are accepted unchanged."""
    request = validate_change(**valid_fields(**{argument: value}))
    assert getattr(request, argument) == value


@pytest.mark.parametrize("change_type", CLIENT_CHANGE_TYPES)
def test_validate_change_accepts_every_change_type(change_type: ChangeType) -> None:
    """Each wire value a client may send (1..5) becomes its ChangeType."""
    request = validate_change(**valid_fields(change_type=int(change_type)))
    assert request.type is change_type


@pytest.mark.parametrize(("limit", "effective"), [(0, 100), (1, 1), (1000, 1000)])
def test_validate_journal_limit_accepts_zero_as_default_and_one_to_thousand(
    limit: int, effective: int
) -> None:
    """A limit of 0 means the default 100; 1..1000 pass unchanged."""
    assert validate_journal_limit(limit) == effective


def test_validate_journal_limit_rejects_above_thousand() -> None:
    """A limit of 1001 raises InvalidArgument naming the limit field."""
    with pytest.raises(InvalidArgument) as excinfo:
        validate_journal_limit(1001)
    assert excinfo.value.field == "limit"


def test_invalid_argument_at_index_locates_the_field_in_a_batch() -> None:
    """at_index prefixes the field with the repeated field and the item index."""
    error = InvalidArgument("amount", "must be greater than zero").at_index("changes", 3)
    assert (error.field, error.problem) == ("changes[3].amount", "must be greater than zero")


def test_validate_change_reports_every_malformed_field_in_field_order() -> None:
    """Three bad fields give three violations, in field order; the message names the first."""
    with pytest.raises(InvalidArgument) as excinfo:
        validate_change(**valid_fields(user_id=0, currency="usd", amount="-1"))
    assert [v.field for v in excinfo.value.violations] == ["user_id", "currency", "amount"]
    assert str(excinfo.value).startswith("user_id: must be a positive 64-bit integer")
    assert str(excinfo.value).endswith("(and 2 more invalid fields)")


def test_one_malformed_field_keeps_the_message_it_always_had() -> None:
    """A single violation's message is exactly ``field: problem``, with nothing appended."""
    with pytest.raises(InvalidArgument) as excinfo:
        validate_change(**valid_fields(amount="0"))
    assert str(excinfo.value) == "amount: must be greater than zero"
    assert excinfo.value.violations == (FieldViolation("amount", "must be greater than zero"),)


def test_at_index_locates_every_violation_of_the_item() -> None:
    """at_index prefixes each of an item's violations, not only the first."""
    error = InvalidArgument("type", "bad", FieldViolation("memo", "too long")).at_index(
        "changes", 5
    )
    assert error.violations == (
        FieldViolation("changes[5].type", "bad"),
        FieldViolation("changes[5].memo", "too long"),
    )


def test_field_checks_return_values_and_raise_nothing_when_all_fields_are_good() -> None:
    """FieldChecks passes each validated value through and raise_if_any is then silent."""
    fields = FieldChecks()
    assert fields.check(validate_journal_limit, 0, -1) == 100
    fields.raise_if_any()
    assert fields.violations == []
