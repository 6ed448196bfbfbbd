"""The event-log wire form of a change: encoding, decoding, poison detection."""

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerd.domain.amounts import MAX_SCALED
from ledgerd.domain.model import CLIENT_CHANGE_TYPES, ChangeRequest, ChangeType
from ledgerd.errors import PoisonMessage
from ledgerd.log.codec import decode_change, decode_message, encode_change, encode_group

_change_requests = st.builds(
    ChangeRequest,
    request_id=st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    user_id=st.integers(min_value=1, max_value=2**64 - 1),
    currency=st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True),
    type=st.sampled_from(CLIENT_CHANGE_TYPES),
    amount=st.integers(min_value=1, max_value=MAX_SCALED),
    memo=st.text(max_size=256).filter(lambda memo: "\x00" not in memo),
)


def message(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "request_id": "r1",
        "user_id": 1,
        "currency": "USD",
        "type": 1,
        "amount": "1.5",
        "memo": "",
    }
    fields.update(overrides)
    return json.dumps(fields).encode()


@given(_change_requests)
def test_encode_then_decode_round_trips(request: ChangeRequest) -> None:
    """Any valid change request decodes to itself after encoding."""
    assert decode_change(encode_change(request)) == request


def test_encoded_amount_is_a_decimal_string() -> None:
    """The amount travels as canonical decimal text, never a number."""
    encoded = encode_change(ChangeRequest("r1", 1, "USD", ChangeType.DEPOSIT, 15 * 10**17))
    assert json.loads(encoded)["amount"] == "1.5"


def test_unknown_fields_are_ignored() -> None:
    """A message with an extra field from a newer writer still decodes."""
    assert decode_change(message(added_later=True)).request_id == "r1"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b"{not json", id="malformed-json"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"{}", id="missing-fields"),
    ],
)
def test_undecodable_bytes_are_poison(value: bytes) -> None:
    """Bytes that are not a change message object raise PoisonMessage."""
    with pytest.raises(PoisonMessage):
        decode_change(value)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"currency": "usd"}, id="lowercase-currency"),
        pytest.param({"amount": "0"}, id="zero-amount"),
        pytest.param({"request_id": ""}, id="empty-request_id"),
        pytest.param({"user_id": 0}, id="zero-user_id"),
        pytest.param({"user_id": 2**64}, id="user_id-above-uint64"),
        pytest.param({"type": 9}, id="unknown-type"),
        pytest.param({"memo": "x" * 257}, id="memo-too-long"),
    ],
)
def test_invalid_fields_are_poison(overrides: dict[str, object]) -> None:
    """A well-formed message whose fields break the domain rules raises PoisonMessage."""
    with pytest.raises(PoisonMessage):
        decode_change(message(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"amount": 1.5}, id="amount-number"),
        pytest.param({"user_id": "1"}, id="user_id-string"),
        pytest.param({"user_id": True}, id="user_id-bool"),
        pytest.param({"type": 1.0}, id="type-float"),
        pytest.param({"memo": None}, id="memo-null"),
        pytest.param({"currency": ["USD"]}, id="currency-list"),
    ],
)
def test_wrong_types_are_poison(overrides: dict[str, object]) -> None:
    """A field of the wrong JSON type raises PoisonMessage."""
    with pytest.raises(PoisonMessage):
        decode_change(message(**overrides))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_poison(value: bytes) -> None:
    """Any bytes either decode to a change or raise PoisonMessage, never another error."""
    with contextlib.suppress(PoisonMessage):
        decode_change(value)


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: _json_scalars
            for name in ("request_id", "user_id", "currency", "type", "amount", "memo")
        },
    )
)
def test_arbitrary_field_values_decode_or_raise_poison(fields: dict[str, object]) -> None:
    """Any JSON object with any scalar field values decodes or raises PoisonMessage."""
    with contextlib.suppress(PoisonMessage):
        decode_change(json.dumps(fields).encode())


def test_a_transfer_leg_round_trips_with_its_transfer_and_counterparty() -> None:
    """A debit, its credit and its return decode with the transfer's id and the other user."""
    debit = ChangeRequest("t-1", 7, "USD", ChangeType.TRANSFER_OUT_FROZEN, 5, "pay", "t-1", 9)
    for leg in (debit, debit.credit(), debit.credit().returned()):
        assert decode_change(encode_change(leg)) == leg
    assert debit.credit().request_id == "t-1~in"
    assert debit.credit().returned().request_id == "t-1~return"


def test_an_atomic_group_is_one_message_with_its_legs_in_order() -> None:
    """The legs decode in order, numbered, sharing the first leg's id as their group."""
    legs = [
        ChangeRequest("s1", 7, "USD", ChangeType.SPEND_FROZEN, 5),
        ChangeRequest("s2", 7, "BTC", ChangeType.DEPOSIT, 1, "fill"),
    ]
    decoded = decode_message(encode_group(legs)).requests
    assert [(leg.request_id, leg.atomic_group, leg.atomic_leg) for leg in decoded] == [
        ("s1", "s1", 0),
        ("s2", "s1", 1),
    ]
    assert decoded[1].memo == "fill"
    assert decoded[1].user_id == 7


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": 6},  # a debit without its transfer
        {"type": 8, "transfer_id": "t1", "counterparty_user_id": 2},  # id lacks "~in"
        {"request_id": "t1~in", "type": 1},  # a leg suffix on a client change
        {"transfer_id": "t1", "counterparty_user_id": 2},  # a deposit naming a transfer
        {"type": 6, "transfer_id": "r1", "counterparty_user_id": 1},  # to itself
        {"more_legs": [{"request_id": "t2", "currency": "USD", "type": 6, "amount": "1"}]},
    ],
)
def test_a_transfer_or_group_message_ledgerd_never_makes_is_poison(
    overrides: dict[str, object],
) -> None:
    """Transfer fields that disagree with the type, or a transfer leg inside an atomic group,
    are refused like any invalid message."""
    with pytest.raises(PoisonMessage):
        decode_change(message(**overrides))
