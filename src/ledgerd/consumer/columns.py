"""The common path of a batch as columns of plain values: verify, decode, decide, rows.

Nearly every message is a client's single change, signed by the outbox and
published once. For a batch made only of such messages the consumer skips the
per-message objects of the general path (``provenance`` + ``decide``): each
message's value is checked against its MAC and decoded by msgspec, its fields go
into lists, and each list is checked against the API's rules at once (the patterns
and bounds of ``ledgerd.domain.validation``, one regex call per column); the decision runs on
those lists and plain ints, and yields journal and rejection rows as tuples in the
order of ``JournalEntry``'s and ``Rejection``'s fields, which the store formats into
SQL in one pass. Objects are made per touched account (its ``Balance``), not per
change.

A locked account is decided here too (its lock travels with its amounts and is looked
at per change only when set); a lock change itself is not a client change, so it
takes the general path.

Anything else (a transfer leg, an atomic group, an unsigned or badly signed
message, one that does not decode or validate here, a retry that checks every
message) makes ``sort_columns`` return None, and the whole batch takes the general
path, which gives the same results with its own objects and error texts: the
results of this path are those of ``decide_batch``, row for row
(tests/unit/test_consumer_columns.py checks that on random batches).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, overload

import msgspec

from ledgerd.domain.amounts import FRACTION_DIGITS, MAX_SCALED
from ledgerd.domain.model import (
    CLIENT_CHANGE_TYPES,
    LEGS_PER_MESSAGE,
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
from ledgerd.domain.rules import refused_by_lock
from ledgerd.domain.validation import MAX_MEMO_CHARS, MAX_USER_ID
from ledgerd.log.base import LogRecord
from ledgerd.log.signing import MAC_HEADER, MessageSigner
from ledgerd.store.base import DecidedRows, JournalRow, RejectionRow
from ledgerd.support.slots import slot_setters

T = TypeVar("T")
R = TypeVar("R")


class _PlainChange(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=False):
    """``ChangeMessage`` as the common path reads it: the fields are checked afterwards, a
    column at a time (``_valid``). The transfer and group fields are read only to send
    such a message to the general path."""

    request_id: str
    user_id: int
    currency: str
    type: int
    amount: str
    memo: str = ""
    accepted_at_ms: int = 0
    resent: bool = False
    transfer_id: str = ""
    counterparty_user_id: int = 0
    more_legs: list[object] | None = None


_decode_plain = msgspec.json.Decoder(_PlainChange).decode


def _every(pattern: str) -> Callable[[list[str]], bool]:
    """Whether each value of a column matches ``pattern`` alone, in one regex call: the
    column joined by newlines, which no value may hold (counted) and no pattern admits."""
    match = re.compile(f"(?:{pattern}\n)*{pattern}", re.ASCII).fullmatch

    def every(values: list[str]) -> bool:
        joined = "\n".join(values)
        return joined.count("\n") == len(values) - 1 and match(joined) is not None

    return every


# The API's field rules (ledgerd.domain.validation, ledgerd.domain.amounts).
_all_request_ids = _every(r"[A-Za-z0-9._:-]{1,64}")
_all_currencies = _every(r"[A-Z0-9]{1,16}")
_all_amounts = _every(r"(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,18})?")
# Valid, and written as ``format_amount`` writes it (no trailing fractional zero): what the
# outbox publishes. Such a column's text is the journal's amount text as it is.
_all_canonical_amounts = _every(r"(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{0,17}[1-9])?")
_CLIENT_TYPE_NUMBERS = frozenset(int(t) for t in CLIENT_CHANGE_TYPES)
_CHANGE_TYPES = {int(t): t for t in ChangeType}
_APPLIED = ChangeStatus.APPLIED
_REJECTED = ChangeStatus.REJECTED
_NO_REASON = RejectReason.NONE
_INSUFFICIENT_AVAILABLE = RejectReason.INSUFFICIENT_AVAILABLE
_INSUFFICIENT_FROZEN = RejectReason.INSUFFICIENT_FROZEN
_AMOUNT_OVERFLOW = RejectReason.AMOUNT_OVERFLOW
_ACCOUNT_LOCKED = RejectReason.ACCOUNT_LOCKED


@dataclass(slots=True)
class ColumnBatch:
    """A polled batch of common messages, one list entry per change, in log order."""

    request_ids: list[str] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    types: list[ChangeType] = field(default_factory=list)
    amounts: list[int] = field(default_factory=list)  # scaled units
    memos: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    event_seqs: list[int] = field(default_factory=list)
    # Request ids whose outcome is read before deciding (resent, or appended long after
    # their acceptance).
    check: set[str] = field(default_factory=set)
    # Each amount as ``format_amount`` writes it, when every message's is (the events
    # publish it as it is); None otherwise.
    amount_texts: list[str] | None = None


def sort_columns(
    records: Sequence[LogRecord], signer: MessageSigner, *, now_ms: int, trust_window_ms: int
) -> ColumnBatch | None:
    """The batch as columns, or None if any record needs the general path."""
    batch = ColumnBatch()
    if not records:
        return batch
    request_ids, user_ids, currencies = batch.request_ids, batch.user_ids, batch.currencies
    memos, partitions, event_seqs, check = (
        batch.memos,
        batch.partitions,
        batch.event_seqs,
        batch.check,
    )
    type_numbers: list[int] = []
    amount_texts: list[str] = []
    verify = signer.verify_mac
    for record in records:
        headers = record.headers
        value = record.value
        # Signed: exactly the outbox's one header (anything else is looked at in full).
        if len(headers) != 1 or headers[0][0] != MAC_HEADER or not verify(value, headers[0][1]):
            return None
        try:
            message = _decode_plain(value)
        except msgspec.DecodeError:  # ValidationError included: the general path says why
            return None
        if message.more_legs is not None or message.transfer_id or message.counterparty_user_id:
            return None
        request_id = message.request_id
        # As ``sort_batch``: by when the log appended it, else by now (provenance).
        if (
            message.resent
            or (record.appended_at_ms or now_ms) - message.accepted_at_ms > trust_window_ms
        ):
            check.add(request_id)
        request_ids.append(request_id)
        user_ids.append(message.user_id)
        currencies.append(message.currency)
        type_numbers.append(message.type)
        amount_texts.append(message.amount)
        memos.append(message.memo)
        partitions.append(record.partition)
        event_seqs.append(record.offset * LEGS_PER_MESSAGE + 1)
    if not _valid(batch, type_numbers, amount_texts):
        return None
    change_types = _CHANGE_TYPES
    batch.types = [change_types[number] for number in type_numbers]
    return batch


def _valid(batch: ColumnBatch, type_numbers: list[int], amount_texts: list[str]) -> bool:
    """Whether every change passes the API's field checks (``validate_change``), checked
    a column at a time; fills in the scaled amounts (and keeps their texts if canonical)."""
    canonical = _all_canonical_amounts(amount_texts)
    if not (
        _all_request_ids(batch.request_ids)
        and _all_currencies(batch.currencies)
        and (canonical or _all_amounts(amount_texts))
        and min(batch.user_ids) > 0
        and max(batch.user_ids) <= MAX_USER_ID
        and _CLIENT_TYPE_NUMBERS.issuperset(type_numbers)
        and max(map(len, batch.memos)) <= MAX_MEMO_CHARS
        and "\x00" not in "".join(batch.memos)
    ):
        return False
    if canonical:
        batch.amount_texts = amount_texts
    amounts = batch.amounts
    for text in amount_texts:
        whole, _, fraction = text.partition(".")
        amounts.append(int(whole + fraction.ljust(FRACTION_DIGITS, "0")))
    return min(amounts) > 0  # zero is well formed but invalid


class Materialized(Sequence[T], Generic[T, R]):
    """A sequence of objects made from rows on first use (for readers that want the
    domain's objects: a sharded store's split, the events publisher)."""

    __slots__ = ("_items", "_make", "_rows")

    def __init__(self, rows: Sequence[R], make: Callable[[R], T]) -> None:
        self._rows = rows
        self._make = make
        self._items: list[T] | None = None

    def _all(self) -> list[T]:
        if self._items is None:
            self._items = [self._make(row) for row in self._rows]
        return self._items

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self._all()[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking: compared by items


def journal_entry(row: JournalRow) -> JournalEntry:
    return JournalEntry(*row)


def rejection(row: RejectionRow) -> Rejection:
    request_id, user_id, currency, change_type, amount, memo, reason = row
    return Rejection(
        ChangeRequest(request_id, user_id, currency, change_type, amount, memo), reason
    )


def outcome(row: tuple[str, ChangeStatus, RejectReason]) -> RequestOutcome:
    return RequestOutcome(*row)


@dataclass(slots=True)
class ColumnDecision:
    """What a column batch changes; reads like ``BatchDecision`` (its balances by account,
    journal, rejections and outcomes are made when read), and carries the plain values
    themselves: the changed balances with their partitions, and the rows."""

    changed: list[Balance]  # each account applied to, in order of its first change
    changed_partitions: list[int]  # the partition of each
    rows: DecidedRows
    outcome_rows: list[tuple[str, ChangeStatus, RejectReason]]
    duplicates: int
    applied: int
    rejected: int
    # The amount of each journal row as ``format_amount`` writes it, where the batch had
    # them (``ColumnBatch.amount_texts``): the events publish them without formatting.
    journal_amount_texts: list[str] | None = None
    journal: Materialized[JournalEntry, JournalRow] = field(init=False)
    rejections: Materialized[Rejection, RejectionRow] = field(init=False)
    outcomes: Materialized[RequestOutcome, tuple[str, ChangeStatus, RejectReason]] = field(
        init=False
    )
    # A client's changes send nothing on: kept for the reader of either decision.
    follow_ups: tuple[ChangeRequest, ...] = ()
    stuck_returns: tuple[ChangeRequest, ...] = ()
    _balances: dict[Account, Balance] | None = field(init=False, default=None)

    @property
    def balances(self) -> dict[Account, Balance]:
        """The changed balances by account (made on first use: the consumer uses ``changed``)."""
        if self._balances is None:
            self._balances = {Account(b.user_id, b.currency): b for b in self.changed}
        return self._balances

    def __post_init__(self) -> None:
        self.journal = Materialized(self.rows.journal, journal_entry)
        self.rejections = Materialized(self.rows.rejections, rejection)
        self.outcomes = Materialized(self.outcome_rows, outcome)


_new_object = object.__new__
# The slots' descriptors of Balance's fields, in its order.
_set_user_id, _set_currency, _set_available, _set_frozen, _set_version, _set_lock = slot_setters(
    Balance, "user_id", "currency", "available", "frozen", "version", "lock"
)


def _balance(  # noqa: PLR0917 - a balance's fields, in its order
    user_id: int, currency: str, available: int, frozen: int, version: int, lock: int
) -> Balance:
    """``Balance(...)`` by its slots' descriptors: half the cost of the frozen dataclass's
    ``__init__`` (which sets each field through ``object.__setattr__``), and a batch makes
    one per account it changes."""
    balance: Balance = _new_object(Balance)
    _set_user_id(balance, user_id)
    _set_currency(balance, currency)
    _set_available(balance, available)
    _set_frozen(balance, frozen)
    _set_version(balance, version)
    _set_lock(balance, lock)
    return balance


# An account's amounts while a batch is decided: [available, frozen, version, lock].
Amounts = list[int]
AccountKey = tuple[int, str]


def accounts_of(batch: ColumnBatch) -> dict[AccountKey, int]:
    """Each account the batch touches, with its partition."""
    keys = zip(batch.user_ids, batch.currencies, strict=True)
    return dict(zip(keys, batch.partitions, strict=True))


# One loop with the rules inline: a call per change would cost more than the rest of it.
def decide_columns(  # noqa: PLR0912, PLR0915
    batch: ColumnBatch,
    already_final: set[str] | frozenset[str],
    balances: Mapping[AccountKey, Balance],
    applied_at_ms: int,
) -> ColumnDecision:
    """``decide_batch`` for a column batch (client changes, one leg each): the same
    balances, journal, rejections, outcomes and counts. ``balances`` holds the accounts
    of the batch (``accounts_of``) that have a balance; the others start at zeros."""
    journal: list[JournalRow] = []
    rejections: list[RejectionRow] = []
    outcomes: list[tuple[str, ChangeStatus, RejectReason]] = []
    state: dict[AccountKey, Amounts] = {}
    changed: dict[AccountKey, int] = {}  # applied to, in order of the first change -> partition
    decided: set[str] = set()
    duplicates = 0
    deposit, withdraw = ChangeType.DEPOSIT, ChangeType.WITHDRAW
    freeze, unfreeze = ChangeType.FREEZE, ChangeType.UNFREEZE
    texts = batch.amount_texts
    journal_texts: list[str] = []
    columns = zip(
        batch.request_ids, batch.user_ids, batch.currencies, batch.types, batch.amounts,
        batch.memos, batch.partitions, batch.event_seqs,
        batch.request_ids if texts is None else texts,  # kept only if there are texts
        strict=True,
    )  # fmt: skip
    for request_id, user_id, currency, kind, amount, memo, partition, seq, text in columns:
        if request_id in decided or request_id in already_final:
            duplicates += 1
            continue
        decided.add(request_id)
        key = (user_id, currency)
        amounts = state.get(key)
        if amounts is None:
            known = balances.get(key)
            amounts = state[key] = (
                [0, 0, 0, 0]  # stored nowhere yet
                if known is None
                else [known.available, known.frozen, known.version, known.lock]
            )
        available, frozen, version, lock = amounts
        if lock and refused_by_lock(lock, kind):
            rejections.append((request_id, user_id, currency, kind, amount, memo, _ACCOUNT_LOCKED))
            outcomes.append((request_id, _REJECTED, _ACCOUNT_LOCKED))
            continue
        if kind is deposit:
            available += amount
        elif kind is withdraw:
            available -= amount
        elif kind is freeze:
            available -= amount
            frozen += amount
        elif kind is unfreeze:
            frozen -= amount
            available += amount
        else:  # SPEND_FROZEN
            frozen -= amount
        if available < 0:
            reason = _INSUFFICIENT_AVAILABLE
        elif frozen < 0:
            reason = _INSUFFICIENT_FROZEN
        elif available > MAX_SCALED or frozen > MAX_SCALED:
            reason = _AMOUNT_OVERFLOW
        else:
            version += 1
            amounts[0], amounts[1], amounts[2] = available, frozen, version
            changed[key] = partition
            journal.append(
                (
                    request_id, user_id, currency, kind, amount, available, frozen, version,
                    applied_at_ms, memo, "", 0, partition, seq, "", lock,
                )
            )  # fmt: skip
            journal_texts.append(text)
            outcomes.append((request_id, _APPLIED, _NO_REASON))
            continue
        rejections.append((request_id, user_id, currency, kind, amount, memo, reason))
        outcomes.append((request_id, _REJECTED, reason))
    new_balances = [
        _balance(user_id, currency, *state[user_id, currency]) for user_id, currency in changed
    ]
    return ColumnDecision(
        new_balances, list(changed.values()), DecidedRows(journal, rejections), outcomes,
        duplicates, len(journal), len(rejections), None if texts is None else journal_texts,
    )  # fmt: skip
