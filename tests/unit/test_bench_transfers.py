"""The transfer scenario's workload: pairs of different funded users, amounts that never
run a source short, unique ids."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledgerd.bench.transfers import FUNDING, TransferFactory


def test_transfers_join_two_different_funded_users_with_unique_ids() -> None:
    """Every transfer names two different users of 1..users, and no id repeats."""
    factory = TransferFactory(users=3)
    transfers = [factory.one() for _ in range(2000)]
    assert all(t.from_user_id != t.to_user_id for t in transfers)
    assert {t.from_user_id for t in transfers} | {t.to_user_id for t in transfers} == {1, 2, 3}
    assert len({t.request_id for t in transfers}) == len(transfers)


def test_a_run_of_transfers_cannot_empty_a_funded_source() -> None:
    """Each amount is below 1, so a million transfers out of one user stay within FUNDING."""
    factory = TransferFactory(users=2)
    assert all(0 < Decimal(factory.one().amount) < 1 for _ in range(1000))
    assert Decimal(FUNDING) >= 1_000_000


def test_the_sample_comes_from_the_accepted_transfers() -> None:
    """Only accepted ids are sampled, each once, at most as many as asked for."""
    factory = TransferFactory(users=2)
    factory.accepted.extend(f"t-{i}" for i in range(10))
    assert sorted(factory.sample(20)) == sorted(factory.accepted)
    assert len(set(factory.sample(4))) == 4


def test_one_user_cannot_transfer() -> None:
    """A transfer needs two users."""
    with pytest.raises(ValueError, match="two users"):
        TransferFactory(users=1)
