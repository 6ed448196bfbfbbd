"""Which messages of a batch may be applied as they are, and which need a look first.

The consumer no longer reads every message's outbox row (that was a row read
per change). Instead, each message says where it came from, and only the
doubtful ones are checked against the store:

* **Signed, first publication, appended soon after its acceptance** (inside
  ``trust_window_s``): applied as it is. The API process publishes a row right
  after committing it and the producer never duplicates (idempotent); the sweep
  republishes a row only once it is older than its sweep age (twice the window
  by default, which leaves the other half for clock skew between processes).
  A resent copy therefore joins the log after such a message, in the same
  partition (a user's partition never changes), and is read after it, flagged.
  So no earlier copy of such a message can have been decided, however late the
  consumer reads it: a consumer draining a backlog checks nothing it need not.
  The log says when it appended a record (``LogRecord.appended_at_ms``: Kafka's
  LogAppendTime, the embedded log's clock); where it does not, the moment of
  reading stands in for it (later, so stricter).
* **Signed, but resent or appended later than the window**: an earlier copy may
  have been decided: the request's outcome is read first, and a decided one is a
  duplicate.
* **Unsigned** (written before messages were signed): must match its outbox row
  field for field, as before; otherwise it is poison.
* **Signed with another key, or altered**: poison. Nothing the outbox did not
  produce is ever applied.

After a commit failed, the consumer cannot know whether it was applied and
checks every message of the batch (``check_all``). The journal's unique
request_id and the rejections' primary key are the last guard: a decided
request can never be recorded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledgerd.consumer.dead_letters import Poison
from ledgerd.domain.model import ChangeRequest
from ledgerd.errors import PoisonMessage
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import decode_message
from ledgerd.log.signing import MessageSigner
from ledgerd.store.base import Store


@dataclass(slots=True)
class SortedBatch:
    """A polled batch, decoded: what to decide, what to check first, what is poison."""

    changes: list[tuple[LogRecord, ChangeRequest]] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)
    check: set[str] = field(default_factory=set)  # read the outcome before deciding
    unsigned: set[str] = field(default_factory=set)  # must also match an outbox row


def sort_batch(
    records: Sequence[LogRecord],
    signer: MessageSigner,
    *,
    now_ms: int,
    trust_window_ms: int,
    check_all: bool = False,
) -> SortedBatch:
    batch = SortedBatch()
    for record in records:
        try:
            decoded = decode_message(record.value)
        except PoisonMessage as exc:
            batch.poison.append(Poison(record, str(exc)))
            continue
        signed = signer.verify(record.value, record.headers)
        if signed is False:
            batch.poison.append(Poison(record, "bad signature: not produced by the outbox"))
            continue
        # An atomic group's legs are one message: checked, decided and committed together.
        request_ids = [leg.request_id for leg in decoded.requests]
        if signed is None:
            batch.unsigned.update(request_ids)
            batch.check.update(request_ids)
        elif (
            check_all
            or decoded.resent
            or (record.appended_at_ms or now_ms) - decoded.accepted_at_ms > trust_window_ms
        ):
            batch.check.update(request_ids)
        batch.changes.extend((record, leg) for leg in decoded.requests)
    return batch


def settle_checks(batch: SortedBatch, store: Store) -> set[str]:
    """Read what the checked messages need: an outbox row for unsigned ones (those with
    no matching row move to poison), the outcome for all. Returns the request ids
    already decided."""
    if not batch.check:
        return set()
    signed = batch.check - batch.unsigned
    decided = set(store.decided_requests(signed)) if signed else set()
    if batch.unsigned:
        stored = store.get_requests(batch.unsigned)
        decided.update(rid for rid, row in stored.items() if row.status.is_final)
        kept: list[tuple[LogRecord, ChangeRequest]] = []
        for record, change in batch.changes:
            row = stored.get(change.request_id)
            if change.request_id in batch.unsigned and (
                row is None or not row.request.same_fields(change)
            ):
                batch.poison.append(Poison(record, "no outbox request matches this message"))
            else:
                kept.append((record, change))
        batch.changes = kept
    return decided
