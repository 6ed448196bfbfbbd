"""Group-commit planning: new requests, retries and conflicts."""

from ledgerd.domain.model import (
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    RejectReason,
    StoredRequest,
)
from ledgerd.errors import RequestConflict
from ledgerd.outbox.planning import Acceptance, plan_acceptance


def request(request_id: str, amount: int = 10, user_id: int = 1) -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, amount)


def test_new_requests_are_inserted_as_pending() -> None:
    """Requests with unseen ids are inserted and answered PENDING, not duplicate."""
    a, b = request("a"), request("b")
    to_insert, plans = plan_acceptance([[a], [b]], {})
    assert to_insert == [a, b]
    assert [plan.acceptances for plan in plans] == [
        [Acceptance(StoredRequest(a, ChangeStatus.PENDING), duplicate=False)],
        [Acceptance(StoredRequest(b, ChangeStatus.PENDING), duplicate=False)],
    ]


def test_identical_retry_of_a_stored_request_answers_its_stored_status() -> None:
    """An identical retry is a duplicate with the stored status, and nothing is inserted."""
    stored = StoredRequest(request("a"), ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE)
    to_insert, plans = plan_acceptance([[request("a")]], {"a": stored})
    assert to_insert == []
    assert plans[0].acceptances == [Acceptance(stored, duplicate=True)]
    assert plans[0].conflict is None


def test_conflicting_request_voids_its_whole_group() -> None:
    """Reusing a stored id with different fields fails the group and inserts none of it."""
    stored = {"a": StoredRequest(request("a", amount=10), ChangeStatus.APPLIED)}
    to_insert, plans = plan_acceptance([[request("new"), request("a", amount=99)]], stored)
    assert to_insert == []
    assert isinstance(plans[0].conflict, RequestConflict)
    assert plans[0].conflict.request_id == "a"
    assert plans[0].acceptances == ()


def test_conflict_in_one_group_leaves_other_groups_unaffected() -> None:
    """Groups before and after a conflicting group in the same flush are still accepted."""
    stored = {"a": StoredRequest(request("a", amount=10), ChangeStatus.SENT)}
    before, after = request("before"), request("after")
    to_insert, plans = plan_acceptance(
        [[before], [request("x"), request("a", amount=99)], [after]], stored
    )
    assert to_insert == [before, after]
    assert [plan.conflict is None for plan in plans] == [True, False, True]
    assert plans[2].acceptances == [
        Acceptance(StoredRequest(after, ChangeStatus.PENDING), duplicate=False)
    ]


def test_requests_of_a_conflicting_group_stay_unknown_to_later_groups() -> None:
    """A new id in a voided group is inserted fresh when a later group of the flush sends it."""
    stored = {"a": StoredRequest(request("a", amount=10), ChangeStatus.SENT)}
    x = request("x")
    to_insert, plans = plan_acceptance([[x, request("a", amount=99)], [x]], stored)
    assert to_insert == [x]
    assert plans[1].acceptances == [
        Acceptance(StoredRequest(x, ChangeStatus.PENDING), duplicate=False)
    ]


def test_same_id_twice_in_one_group_is_inserted_once() -> None:
    """An identical repeat inside one group is a duplicate of the first and inserted once."""
    a = request("a")
    to_insert, plans = plan_acceptance([[a, request("a")]], {})
    assert to_insert == [a]
    pending = StoredRequest(a, ChangeStatus.PENDING)
    assert plans[0].acceptances == [
        Acceptance(pending, duplicate=False),
        Acceptance(pending, duplicate=True),
    ]


def test_same_id_in_two_groups_of_one_flush_is_inserted_once() -> None:
    """A later group repeating an id an earlier group added gets a PENDING duplicate."""
    a = request("a")
    to_insert, plans = plan_acceptance([[a], [request("a")]], {})
    assert to_insert == [a]
    assert plans[1].acceptances == [
        Acceptance(StoredRequest(a, ChangeStatus.PENDING), duplicate=True)
    ]


def test_a_single_change_reusing_an_id_of_an_earlier_group_with_other_fields_conflicts() -> None:
    """Two single-change calls of one flush with one id but different fields: the first is
    inserted, the second fails with a conflict at request_id."""
    first = request("a", amount=1)
    to_insert, plans = plan_acceptance([[first], [request("a", amount=2)]], {})
    assert to_insert == [first]
    assert plans[0].conflict is None
    assert str(plans[1].conflict).startswith("request_id:")


def test_same_id_with_different_fields_in_one_group_is_a_conflict() -> None:
    """Two items of one group sharing an id but not their fields void the group."""
    to_insert, plans = plan_acceptance([[request("a", amount=1), request("a", amount=2)]], {})
    assert to_insert == []
    assert isinstance(plans[0].conflict, RequestConflict)


def test_conflict_in_a_batch_is_located_at_the_item() -> None:
    """In a multi-item group the conflict names changes[i].request_id."""
    stored = {"a": StoredRequest(request("a", amount=10), ChangeStatus.PENDING)}
    _, plans = plan_acceptance([[request("b"), request("c"), request("a", amount=99)]], stored)
    assert str(plans[0].conflict).startswith("changes[2].request_id:")


def test_conflict_of_a_single_change_is_located_at_request_id() -> None:
    """In a single-item group the conflict names the plain request_id field."""
    stored = {"a": StoredRequest(request("a", amount=10), ChangeStatus.PENDING)}
    _, plans = plan_acceptance([[request("a", amount=99)]], stored)
    assert str(plans[0].conflict).startswith("request_id:")
