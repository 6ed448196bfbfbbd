"""apply-large's journal prefill: a history the audit accepts, spread over the accounts."""

from __future__ import annotations

from ledgerd.bench.prefill import journal_values, rows_per_account


def test_rows_are_shared_over_the_accounts_the_first_ones_taking_the_remainder() -> None:
    """7 rows over 3 accounts: 3, 2, 2; fewer rows than accounts leave the rest out."""
    assert list(rows_per_account(7, 3)) == [(1, 3), (2, 2), (3, 2)]
    assert list(rows_per_account(2, 5)) == [(1, 1), (2, 1)]


def test_each_account_is_a_run_of_deposits_ending_at_its_balance() -> None:
    """Versions 1..n of DEPOSIT 1 with available_after = version, unique request ids in
    insertion order, no event position; the balance row is (n, 0) at version n."""
    rows = list(journal_values(5, 2, applied_at_ms=123))
    assert rows == [
        "(1,'USD',1,'prefill-000000000000',1,1,1,0,123,'')",
        "(1,'USD',2,'prefill-000000000001',1,1,2,0,123,'')",
        "(1,'USD',3,'prefill-000000000002',1,1,3,0,123,'')",
        "(2,'USD',1,'prefill-000000000003',1,1,1,0,123,'')",
        "(2,'USD',2,'prefill-000000000004',1,1,2,0,123,'')",
    ]
