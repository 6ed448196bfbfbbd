"""The four operations and their rejections (docs/architecture.md section 4)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerd.domain.amounts import MAX_SCALED
from ledgerd.domain.model import Balance, ChangeRequest, ChangeType, RejectReason
from ledgerd.domain.rules import Applied, Rejected, apply_change

USER_ID = 42
CURRENCY = "USD"


def balance(available: int = 0, frozen: int = 0, version: int = 0) -> Balance:
    return Balance(USER_ID, CURRENCY, available, frozen, version)


def change(change_type: ChangeType, amount: int, request_id: str = "r1") -> ChangeRequest:
    return ChangeRequest(request_id, USER_ID, CURRENCY, change_type, amount)


@pytest.mark.parametrize(
    ("change_type", "available_after", "frozen_after"),
    [
        (ChangeType.DEPOSIT, 130, 50),
        (ChangeType.WITHDRAW, 70, 50),
        (ChangeType.FREEZE, 70, 80),
        (ChangeType.UNFREEZE, 130, 20),
    ],
)
def test_apply_change_moves_amounts_as_the_operation_says(
    change_type: ChangeType, available_after: int, frozen_after: int
) -> None:
    """Each operation changes available and frozen by the amount (docs/architecture.md §4)."""
    result = apply_change(balance(available=100, frozen=50, version=7), change(change_type, 30))
    assert result == Applied(balance(available_after, frozen_after, version=8))


# Hold changes are decided with their hold (tests/unit/test_holds.py).
_PLAIN_TYPES = [kind for kind in ChangeType if not kind.is_hold_change]


@pytest.mark.parametrize("change_type", _PLAIN_TYPES)
def test_apply_change_increments_version_by_one(change_type: ChangeType) -> None:
    """An applied change bumps the account's version by exactly one."""
    result = apply_change(balance(available=10, frozen=10, version=3), change(change_type, 1))
    assert isinstance(result, Applied)
    assert result.balance.version == 4


def test_apply_change_keeps_the_account() -> None:
    """The new balance belongs to the same user and currency."""
    result = apply_change(balance(available=10), change(ChangeType.DEPOSIT, 1))
    assert isinstance(result, Applied)
    assert (result.balance.user_id, result.balance.currency) == (USER_ID, CURRENCY)


@pytest.mark.parametrize("change_type", [ChangeType.WITHDRAW, ChangeType.FREEZE])
def test_taking_more_than_available_is_rejected(change_type: ChangeType) -> None:
    """WITHDRAW or FREEZE beyond the available amount is INSUFFICIENT_AVAILABLE."""
    result = apply_change(balance(available=10, frozen=100), change(change_type, 11))
    assert result == Rejected(RejectReason.INSUFFICIENT_AVAILABLE)


def test_unfreezing_more_than_frozen_is_rejected() -> None:
    """UNFREEZE beyond the frozen amount is INSUFFICIENT_FROZEN."""
    result = apply_change(balance(available=100, frozen=10), change(ChangeType.UNFREEZE, 11))
    assert result == Rejected(RejectReason.INSUFFICIENT_FROZEN)


@pytest.mark.parametrize(
    ("change_type", "available_after", "frozen_after"),
    [
        (ChangeType.WITHDRAW, 0, 5),
        (ChangeType.FREEZE, 0, 15),
    ],
)
def test_taking_exactly_the_available_amount_is_allowed(
    change_type: ChangeType, available_after: int, frozen_after: int
) -> None:
    """WITHDRAW or FREEZE of exactly the available amount leaves available at zero."""
    result = apply_change(balance(available=10, frozen=5), change(change_type, 10))
    assert result == Applied(balance(available_after, frozen_after, version=1))


def test_unfreezing_exactly_the_frozen_amount_is_allowed() -> None:
    """UNFREEZE of exactly the frozen amount leaves frozen at zero."""
    result = apply_change(balance(available=1, frozen=10), change(ChangeType.UNFREEZE, 10))
    assert result == Applied(balance(11, 0, version=1))


def test_deposit_up_to_the_maximum_is_allowed() -> None:
    """A deposit reaching exactly the DECIMAL(38,18) maximum is applied."""
    result = apply_change(balance(available=MAX_SCALED - 1), change(ChangeType.DEPOSIT, 1))
    assert result == Applied(balance(MAX_SCALED, 0, version=1))


def test_deposit_above_the_maximum_is_rejected() -> None:
    """A deposit taking available above the DECIMAL(38,18) range is AMOUNT_OVERFLOW."""
    result = apply_change(balance(available=MAX_SCALED), change(ChangeType.DEPOSIT, 1))
    assert result == Rejected(RejectReason.AMOUNT_OVERFLOW)


def test_freeze_above_the_maximum_frozen_is_rejected() -> None:
    """A freeze taking frozen above the DECIMAL(38,18) range is AMOUNT_OVERFLOW."""
    result = apply_change(balance(available=10, frozen=MAX_SCALED), change(ChangeType.FREEZE, 1))
    assert result == Rejected(RejectReason.AMOUNT_OVERFLOW)


def test_unfreeze_above_the_maximum_available_is_rejected() -> None:
    """An unfreeze taking available above the DECIMAL(38,18) range is AMOUNT_OVERFLOW."""
    result = apply_change(balance(available=MAX_SCALED, frozen=10), change(ChangeType.UNFREEZE, 1))
    assert result == Rejected(RejectReason.AMOUNT_OVERFLOW)


_amounts = st.one_of(
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=1, max_value=MAX_SCALED),
)
_changes = st.lists(st.tuples(st.sampled_from(_PLAIN_TYPES), _amounts), max_size=60)


_NET_EFFECT = {
    ChangeType.DEPOSIT: 1,
    ChangeType.TRANSFER_IN: 1,
    ChangeType.TRANSFER_RETURN: 1,
    ChangeType.WITHDRAW: -1,
    ChangeType.SPEND_FROZEN: -1,
    ChangeType.TRANSFER_OUT: -1,
    ChangeType.TRANSFER_OUT_FROZEN: -1,
    ChangeType.FREEZE: 0,
    ChangeType.UNFREEZE: 0,
    # A lock change moves no money, and a locked account's refusals change nothing.
    ChangeType.LOCK_DEBITS: 0,
    ChangeType.LOCK_FULL: 0,
    ChangeType.UNLOCK: 0,
}


@given(_changes)
def test_any_sequence_keeps_amounts_non_negative_and_conserved(
    steps: list[tuple[ChangeType, int]],
) -> None:
    """Applied changes never make an amount negative, and the total is what came in (deposits,
    transfer credits and returns) less what went out (withdrawals, spent frozen, transfer
    debits)."""
    current = balance()
    net_deposits = 0
    applied = 0
    for index, (change_type, amount) in enumerate(steps):
        result = apply_change(current, change(change_type, amount, request_id=f"r{index}"))
        if isinstance(result, Applied):
            current = result.balance
            applied += 1
            net_deposits += _NET_EFFECT[change_type] * amount
        assert 0 <= current.available <= MAX_SCALED
        assert 0 <= current.frozen <= MAX_SCALED
        assert current.available + current.frozen == net_deposits
    assert current.version == applied


def test_spend_frozen_lowers_frozen_only() -> None:
    """SPEND_FROZEN settles a hold: frozen goes down, available stays."""
    result = apply_change(balance(available=5, frozen=10), change(ChangeType.SPEND_FROZEN, 4))
    assert isinstance(result, Applied)
    assert (result.balance.available, result.balance.frozen) == (5, 6)


def test_spend_frozen_beyond_frozen_is_rejected() -> None:
    """Spending more than is frozen is INSUFFICIENT_FROZEN, whatever is available."""
    result = apply_change(balance(available=100, frozen=3), change(ChangeType.SPEND_FROZEN, 4))
    assert result == Rejected(RejectReason.INSUFFICIENT_FROZEN)


@pytest.mark.parametrize(
    ("change_type", "available", "frozen"),
    [
        (ChangeType.TRANSFER_OUT, 6, 10),
        (ChangeType.TRANSFER_OUT_FROZEN, 10, 6),
        (ChangeType.TRANSFER_IN, 14, 10),
        (ChangeType.TRANSFER_RETURN, 14, 10),
    ],
)
def test_transfer_legs_move_the_named_amount(
    change_type: ChangeType, available: int, frozen: int
) -> None:
    """A debit takes from available (or frozen); a credit and a return add to available."""
    result = apply_change(balance(available=10, frozen=10), change(change_type, 4))
    assert isinstance(result, Applied)
    assert (result.balance.available, result.balance.frozen) == (available, frozen)
