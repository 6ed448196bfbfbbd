"""Which log messages the consumer applies as they are, checks first, or refuses."""

from collections.abc import Collection
from typing import Any, cast

from ledgerd.consumer.provenance import settle_checks, sort_batch
from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType, StoredRequest
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import encode_change
from ledgerd.log.signing import MessageSigner

SIGNER = MessageSigner(b"k" * 32)
NOW_MS = 1_700_000_000_000
WINDOW_MS = 15_000


def change(request_id: str, amount: int = 10) -> ChangeRequest:
    return ChangeRequest(request_id, 7, "EUR", ChangeType.DEPOSIT, amount)


def record(
    request: ChangeRequest,
    *,
    accepted_at_ms: int = NOW_MS - 100,
    resent: bool = False,
    signer: MessageSigner | None = SIGNER,
    offset: int = 0,
    appended_at_ms: int = 0,
) -> LogRecord:
    value = encode_change(request, accepted_at_ms=accepted_at_ms, resent=resent)
    headers = tuple(signer.headers(value)) if signer is not None else ()
    return LogRecord("t", 0, offset, b"7", value, headers, appended_at_ms)


class StoredState:
    """The two store reads the checks make, over a dict of stored requests."""

    def __init__(self, stored: dict[str, StoredRequest]) -> None:
        self.stored = stored
        self.asked_outbox: set[str] = set()

    def get_requests(self, ids: Collection[str]) -> dict[str, StoredRequest]:
        self.asked_outbox |= set(ids)
        return {rid: row for rid, row in self.stored.items() if rid in ids}

    def decided_requests(self, ids: Collection[str]) -> set[str]:
        return {rid for rid in ids if rid in self.stored and self.stored[rid].status.is_final}


def sort(*records: LogRecord, check_all: bool = False):  # type: ignore[no-untyped-def]
    return sort_batch(
        records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS, check_all=check_all
    )


def test_fresh_signed_first_publication_is_applied_without_a_read() -> None:
    """A signed message published right after its commit needs no outcome read."""
    batch = sort(record(change("a")))
    assert [c.request_id for _, c in batch.changes] == ["a"]
    assert batch.check == set() and batch.poison == []


def test_resent_message_is_checked() -> None:
    """A copy the sweep published again may follow an applied original: read its outcome."""
    assert sort(record(change("a"), resent=True)).check == {"a"}


def test_message_older_than_the_trust_window_is_checked() -> None:
    """An original consumed after the window, from a log that does not say when it appended
    it, may come after its resent copy: read its outcome."""
    old = record(change("a"), accepted_at_ms=NOW_MS - WINDOW_MS - 1)
    assert sort(old).check == {"a"}


def test_a_first_publication_appended_in_the_window_is_trusted_however_late_it_is_read() -> None:
    """A consumer draining a backlog an hour old: each message joined the log within the
    window of its acceptance, before any resent copy could, so it is read first."""
    hour_ms = 3_600_000
    accepted = NOW_MS - hour_ms
    batch = sort(
        record(change("a"), accepted_at_ms=accepted, appended_at_ms=accepted + 20),
        record(change("b"), accepted_at_ms=accepted, appended_at_ms=accepted + WINDOW_MS, offset=1),
    )
    assert batch.check == set() and len(batch.changes) == 2


def test_a_message_appended_later_than_the_window_is_checked_however_soon_it_is_read() -> None:
    """Appended past the window (a relay that published long after the commit): a resent
    copy may have joined the log first, whenever the consumer reads this one."""
    late = record(change("a"), accepted_at_ms=NOW_MS - WINDOW_MS - 2, appended_at_ms=NOW_MS - 1)
    assert sort(late).check == {"a"}


def test_a_resent_copy_is_checked_whenever_it_was_appended() -> None:
    resent = record(change("a"), resent=True, appended_at_ms=NOW_MS - 90)
    assert sort(resent).check == {"a"}


def test_after_a_failed_commit_every_message_is_checked() -> None:
    """check_all (a retry of a commit that may have happened) reads every outcome."""
    assert sort(record(change("a")), record(change("b"), offset=1), check_all=True).check == {
        "a",
        "b",
    }


def test_message_signed_with_another_key_is_poison() -> None:
    """A message the outbox did not sign is never applied."""
    forged = record(change("a"), signer=MessageSigner(b"x" * 32))
    batch = sort(forged)
    assert batch.changes == []
    assert [p.error for p in batch.poison] == ["bad signature: not produced by the outbox"]


def test_altered_message_is_poison() -> None:
    """Changing a signed message's bytes (here: the amount) breaks its signature."""
    genuine = record(change("a", amount=10))
    altered = LogRecord(
        "t",
        0,
        0,
        b"7",
        genuine.value.replace(b'"amount":"', b'"amount":"9'),
        headers=genuine.headers,
    )
    assert len(sort(altered).poison) == 1


def test_unsigned_message_must_match_its_outbox_row() -> None:
    """An unsigned message (from before signing) is applied only if its outbox row matches."""
    batch = sort(
        record(change("a"), signer=None),
        record(change("b", amount=5), signer=None, offset=1),
        record(change("c"), signer=None, offset=2),
    )
    stored = StoredState(
        {
            "a": StoredRequest(change("a"), ChangeStatus.PENDING),
            "b": StoredRequest(change("b", amount=999), ChangeStatus.PENDING),
        }
    )
    assert settle_checks(batch, cast(Any, stored)) == set()
    assert [c.request_id for _, c in batch.changes] == ["a"]
    assert sorted(p.error for p in batch.poison) == ["no outbox request matches this message"] * 2


def test_checked_request_with_an_outcome_is_already_decided() -> None:
    """A checked message whose request is APPLIED or REJECTED is a duplicate."""
    batch = sort(
        record(change("a"), resent=True),
        record(change("b"), resent=True, offset=1),
        record(change("c"), resent=True, offset=2),
    )
    stored = StoredState(
        {
            "a": StoredRequest(change("a"), ChangeStatus.APPLIED),
            "b": StoredRequest(change("b"), ChangeStatus.REJECTED),
            "c": StoredRequest(change("c"), ChangeStatus.SENT),
        }
    )
    assert settle_checks(batch, cast(Any, stored)) == {"a", "b"}
    assert stored.asked_outbox == set()  # signed messages need only their outcome
