"""The hot path's cheap constructors of frozen value objects make what ``__init__`` makes."""

from __future__ import annotations

import dataclasses

import pytest

from ledgerd.consumer.columns import _balance
from ledgerd.consumer.memory import _account
from ledgerd.domain.model import Account, Balance


def test_a_balance_made_by_its_slots_is_the_one_its_init_makes() -> None:
    """Every field set (a field added to Balance fails here, not as a missing attribute
    later), equal and hashing alike, and still frozen."""
    made = Balance(7, "USD", 10**18, 5, 3, 2)
    cheap = _balance(*dataclasses.astuple(made))
    assert cheap == made
    assert hash(cheap) == hash(made)
    assert [getattr(cheap, f.name) for f in dataclasses.fields(Balance)] == list(
        dataclasses.astuple(made)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        cheap.version = 4  # type: ignore[misc]


def test_an_account_made_by_its_slots_is_the_one_its_init_makes() -> None:
    """Equal, hashing alike (memory and the store key dicts by it), and frozen."""
    made = Account(7, "USD")
    cheap = _account(*dataclasses.astuple(made))
    assert cheap == made
    assert hash(cheap) == hash(made)
    assert {made: 1}[cheap] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cheap.user_id = 8  # type: ignore[misc]
