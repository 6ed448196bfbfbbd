"""The consumer's pure decision step: applying a batch against in-memory balances."""

from ledgerd.consumer.decide import decide_batch
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
    RequestOutcome,
)

USER_ID = 7
CURRENCY = "EUR"
ACCOUNT = Account(USER_ID, CURRENCY)
APPLIED_AT_MS = 1_700_000_000_000


def change(
    request_id: str, change_type: ChangeType = ChangeType.DEPOSIT, amount: int = 10
) -> ChangeRequest:
    return ChangeRequest(request_id, USER_ID, CURRENCY, change_type, amount, memo=f"m-{request_id}")


def pending(*changes: ChangeRequest) -> set[str]:
    """None of the changes already has an outcome."""
    return set()


def starting(available: int = 0, frozen: int = 0, version: int = 0) -> dict[Account, Balance]:
    return {ACCOUNT: Balance(USER_ID, CURRENCY, available, frozen, version)}


def test_changes_apply_in_order_with_incrementing_versions() -> None:
    """Each applied change of an account gets the next version, in batch order."""
    changes = [
        change("a", ChangeType.DEPOSIT, 100),
        change("b", ChangeType.FREEZE, 30),
        change("c", ChangeType.WITHDRAW, 70),
    ]
    decision = decide_batch(changes, pending(*changes), starting(version=5), APPLIED_AT_MS)
    assert [(e.request_id, e.version) for e in decision.journal] == [("a", 6), ("b", 7), ("c", 8)]
    assert decision.balances == {ACCOUNT: Balance(USER_ID, CURRENCY, 0, 30, 8)}
    assert decision.applied == 3


def test_order_decides_which_change_fits() -> None:
    """A withdrawal before the deposit that would cover it is rejected."""
    changes = [change("w", ChangeType.WITHDRAW, 10), change("d", ChangeType.DEPOSIT, 10)]
    decision = decide_batch(changes, pending(*changes), starting(), APPLIED_AT_MS)
    assert [o.status for o in decision.outcomes] == [ChangeStatus.REJECTED, ChangeStatus.APPLIED]


def test_journal_entry_holds_the_change_and_the_amounts_after_it() -> None:
    """A journal entry carries the change, available_after, frozen_after, version and time."""
    freeze = change("f", ChangeType.FREEZE, 40)
    decision = decide_batch([freeze], pending(freeze), starting(100, 5, 2), APPLIED_AT_MS)
    assert decision.journal == [
        JournalEntry(
            request_id="f",
            user_id=USER_ID,
            currency=CURRENCY,
            type=ChangeType.FREEZE,
            amount=40,
            available_after=60,
            frozen_after=45,
            version=3,
            applied_at_ms=APPLIED_AT_MS,
            memo="m-f",
        )
    ]


def test_applied_change_gets_an_applied_outcome() -> None:
    """An applied change's request is marked APPLIED with no reject reason."""
    deposit = change("a")
    decision = decide_batch([deposit], pending(deposit), starting(), APPLIED_AT_MS)
    assert decision.outcomes == [RequestOutcome("a", ChangeStatus.APPLIED, RejectReason.NONE)]


def test_rejected_change_gets_an_outcome_and_no_journal_entry() -> None:
    """A change that does not fit is REJECTED with its reason, journals nothing, keeps balance."""
    withdraw = change("w", ChangeType.WITHDRAW, 11)
    decision = decide_batch([withdraw], pending(withdraw), starting(10, 0, 4), APPLIED_AT_MS)
    assert decision.outcomes == [
        RequestOutcome("w", ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE)
    ]
    assert decision.rejections == [Rejection(withdraw, RejectReason.INSUFFICIENT_AVAILABLE)]
    assert decision.journal == []
    assert decision.balances == {}
    assert (decision.applied, decision.rejected) == (0, 1)


def test_request_with_an_outcome_is_skipped_as_duplicate() -> None:
    """A change whose request already has an outcome is counted as a duplicate, not applied."""
    deposit = change("a")
    decision = decide_batch([deposit], {"a"}, starting(), APPLIED_AT_MS)
    assert decision.duplicates == 1
    assert (decision.outcomes, decision.journal, decision.balances) == ([], [], {})


def test_repeated_request_id_in_a_batch_is_applied_once() -> None:
    """A resend of a request later in the same batch is a duplicate and changes nothing."""
    deposit = change("a", amount=10)
    decision = decide_batch([deposit, deposit], pending(deposit), starting(), APPLIED_AT_MS)
    assert decision.balances[ACCOUNT].available == 10
    assert len(decision.journal) == 1
    assert len(decision.outcomes) == 1
    assert decision.duplicates == 1


def test_accounts_are_decided_independently() -> None:
    """Changes of different accounts each start from their own balance and version."""
    other = Account(USER_ID, "USD")
    eur = change("eur", amount=5)
    usd = ChangeRequest("usd", USER_ID, "USD", ChangeType.DEPOSIT, 3)
    balances = {**starting(version=1), other: Balance(USER_ID, "USD", 0, 0, 9)}
    decision = decide_batch([eur, usd], pending(eur, usd), balances, APPLIED_AT_MS)
    assert decision.balances == {
        ACCOUNT: Balance(USER_ID, CURRENCY, 5, 0, 2),
        other: Balance(USER_ID, "USD", 3, 0, 10),
    }


def test_input_balances_are_not_modified() -> None:
    """decide_batch works on a copy and leaves the caller's balances mapping untouched."""
    deposit = change("a")
    balances = starting()
    decide_batch([deposit], pending(deposit), balances, APPLIED_AT_MS)
    assert balances == starting()
