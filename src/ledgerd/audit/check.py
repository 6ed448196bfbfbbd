"""``ledgerd audit``: check the store's invariants, readable on a live system.

Per account: the balance equals the replay of its journal, versions run
1, 2, 3 … without gaps, no amount is ever negative, and stamps (``applied_at_ms``)
never fall as versions rise. Per request: a
request_id is journaled at most once and is never both journaled and
rejected. Outbox rows without an outcome (PENDING/SENT/FAILED) are "in
flight", not errors; rows written before schema 3 that recorded their own
outcome must agree with the journal.

Per hold: the open holds of an account add up to at most its frozen amount, and no hold
is still open ``max_in_flight_s`` past its expiry (the sweep sends its expiry within a
second or so; past the bound it is lost or stuck).

Over the whole store, money is conserved per currency (``audit.money``) and every
transfer's legs match (``audit.transfers``); transfers in flight are counted, and one in
flight for longer than ``max_in_flight_s`` is reported (a stuck credit).

The whole scan reads one snapshot of the store, so it is exact on a live system.

With database shards, ``audit_shards`` audits each shard in its own snapshot, checks
that every row is in the shard of its user's partition, and adds the reports up,
checking that no request has an outcome in two shards; money and transfers are checked
on the total, since a transfer's legs live in the shards of its two users.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from ledgerd.audit.money import Conservation
from ledgerd.audit.transfers import TransferBook, TransferSummary
from ledgerd.domain.amounts import format_amount
from ledgerd.domain.holds import HoldState, plain_type
from ledgerd.domain.model import (
    CREDIT_SUFFIX,
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
)
from ledgerd.domain.rules import Applied, apply_change, refused_by_lock
from ledgerd.store.base import Store
from ledgerd.store.scan import (
    iter_balances,
    iter_holds,
    iter_journal,
    iter_rejections,
    iter_requests,
)
from ledgerd.store.sharded import ShardedStore

MAX_REPORTED = 20
# A transfer's credit normally follows its debit within a second; past this it is stuck
# (LEDGERD_AUDIT_MAX_IN_FLIGHT_S has the same default).
DEFAULT_MAX_IN_FLIGHT_S = 300.0


@dataclass
class AuditReport:
    accounts: int = 0
    journal_entries: int = 0
    rejections: int = 0
    holds: int = 0
    open_holds: int = 0
    requests: Counter[str] = field(default_factory=Counter)  # every request, by status
    outbox_rows: Counter[str] = field(default_factory=Counter)  # rows left, by outbox status
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    # The request ids with an outcome (journaled or rejected), for the check across shards.
    decided: set[str] = field(default_factory=set, repr=False)
    # Set once money and transfers are checked: on the whole store, not on one shard.
    money: Conservation | None = field(default=None, repr=False)
    transfers: TransferSummary | None = None

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def in_flight(self) -> int:
        return sum(
            self.requests[s.name]
            for s in (ChangeStatus.PENDING, ChangeStatus.SENT, ChangeStatus.FAILED)
        )

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(text)

    def as_json(self) -> dict[str, object]:
        """The report as ``ledgerd audit --json`` prints it (money and transfers only when
        checked: on the whole store, the total over shards)."""
        document: dict[str, object] = {
            "ok": self.ok,
            "accounts": self.accounts,
            "journal_entries": self.journal_entries,
            "holds": self.holds,
            "open_holds": self.open_holds,
            "requests": dict(self.requests),
            "in_flight": self.in_flight,
            "outbox_rows": dict(self.outbox_rows),
            "problem_count": self.problem_count,
            "problems": list(self.problems),
        }
        if self.transfers is not None:
            document["transfers"] = self.transfers.as_json()
        if self.money is not None:
            document["money"] = {
                currency: totals.as_json()
                for currency, totals in sorted(self.money.currencies.items())
            }
        return document

    def summary(self) -> str:
        rows = [
            ("accounts", f"{self.accounts:,}"),
            ("journal entries", f"{self.journal_entries:,}"),
            ("holds", f"{self.holds:,}"),
            ("holds open", f"{self.open_holds:,}"),
            *((f"requests {name}", f"{count:,}") for name, count in sorted(self.requests.items())),
            ("requests in flight", f"{self.in_flight:,}"),
            ("outbox rows", f"{sum(self.outbox_rows.values()):,}"),
            *self._transfer_rows(),
            ("problems", f"{self.problem_count:,}"),
        ]
        width = max(len(value) for _, value in rows)
        lines = [f"{label:<22}{value:>{width}}" for label, value in rows]
        lines += [f"  - {p}" for p in self.problems]
        if self.problem_count > len(self.problems):
            lines.append(f"  … and {self.problem_count - len(self.problems)} more")
        lines.append("AUDIT OK" if self.ok else "AUDIT FAILED")
        return "\n".join(lines)

    def _transfer_rows(self) -> list[tuple[str, str]]:
        if self.transfers is None:
            return []
        return [
            ("transfers", f"{self.transfers.transfers:,}"),
            ("transfers in flight", f"{self.transfers.in_flight:,}"),
            *(
                (f"  in flight {currency}", format_amount(amount))
                for currency, amount in self.transfers.in_flight_amounts.items()
            ),
        ]


# Called now and then during a long scan with (what is being read, rows read so far).
Progress = Callable[[str, int], None]
PROGRESS_EVERY_ROWS = 100_000
T = TypeVar("T")


# Whether a user's rows belong in the store being audited (one shard of several).
Belongs = Callable[[int], bool]


def audit(
    store: Store,
    progress: Progress | None = None,
    *,
    max_in_flight_s: float = DEFAULT_MAX_IN_FLIGHT_S,
    now_ms: int | None = None,
) -> AuditReport:
    """Scan the whole store (one snapshot) and report every broken invariant, with the
    transfers in flight at ``now_ms`` (default: when the audit starts)."""
    started_ms = _wall_clock_ms() if now_ms is None else now_ms
    money, book = Conservation(), TransferBook()
    overdue = _HoldBound(started_ms, int(max_in_flight_s * 1000))
    with store.snapshot():
        report = _audit(store, progress or _quiet, lambda _: True, money, book, overdue)
    # A sharded store takes its shards' snapshots one after the other.
    later_looks = list(store.shards) if isinstance(store, ShardedStore) else []
    _check_money(
        report,
        money,
        book,
        later_looks=later_looks,
        now_ms=started_ms,
        max_in_flight_s=max_in_flight_s,
    )
    return report


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _quiet(_: str, __: int) -> None:
    pass


class _Placement:
    """Reports, once per user, rows of a user whose partition lives in another shard."""

    def __init__(self, report: AuditReport, belongs: Belongs) -> None:
        self._report = report
        self._belongs = belongs
        self._misplaced: set[int] = set()

    def check(self, user_id: int, what: str) -> None:
        if user_id not in self._misplaced and not self._belongs(user_id):
            self._misplaced.add(user_id)
            self._report.problem(
                f"user {user_id}: {what} in a shard that does not own its partition"
            )


@dataclass
class ShardAudit:
    """One shard's report, with where the shard is."""

    shard_id: int
    where: str
    report: AuditReport


def audit_shards(
    shards: Sequence[tuple[str, Store]],
    shard_of_user: Callable[[int], int],
    progress: Progress | None = None,
    *,
    max_in_flight_s: float = DEFAULT_MAX_IN_FLIGHT_S,
    now_ms: int | None = None,
) -> tuple[list[ShardAudit], AuditReport]:
    """Audit each shard (where, store) in its own snapshot, with the placement check;
    returns the reports and their total (counts added up, problems named by shard, any
    request with an outcome in two shards, money and transfers over all shards)."""
    started_ms = _wall_clock_ms() if now_ms is None else now_ms
    money, book = Conservation(), TransferBook()
    audits = []
    for shard_id, (where, store) in enumerate(shards):
        belongs = partial(_in_shard, shard_of_user, shard_id)
        with store.snapshot():
            report = _audit(
                store, progress or _quiet, belongs, money, book,
                _HoldBound(started_ms, int(max_in_flight_s * 1000)),
            )  # fmt: skip
        audits.append(ShardAudit(shard_id, where, report))
    total = _total(audits)
    later_looks = [store for _, store in shards]
    _check_money(
        total,
        money,
        book,
        later_looks=later_looks,
        now_ms=started_ms,
        max_in_flight_s=max_in_flight_s,
    )
    return audits, total


def _in_shard(shard_of_user: Callable[[int], int], shard_id: int, user_id: int) -> bool:
    return shard_of_user(user_id) == shard_id


def _total(audits: Sequence[ShardAudit]) -> AuditReport:
    total = AuditReport()
    seen: dict[str, int] = {}
    for shard in audits:
        report = shard.report
        total.accounts += report.accounts
        total.journal_entries += report.journal_entries
        total.rejections += report.rejections
        total.holds += report.holds
        total.open_holds += report.open_holds
        total.requests.update(report.requests)
        total.outbox_rows.update(report.outbox_rows)
        for problem in report.problems:
            total.problem(f"shard {shard.shard_id}: {problem}")
        # counted, though past MAX_REPORTED the text of the rest is not kept
        total.problem_count += report.problem_count - len(report.problems)
        for request_id in report.decided:
            if request_id in seen:
                total.problem(
                    f"request {request_id}: outcomes in shards {seen[request_id]}"
                    f" and {shard.shard_id}"
                )
            seen[request_id] = shard.shard_id
    total.decided = set(seen)
    return total


def _counted(rows: Iterable[T], what: str, progress: Progress) -> Iterator[T]:
    count = 0
    for count, row in enumerate(rows, 1):
        if count % PROGRESS_EVERY_ROWS == 0:
            progress(what, count)
        yield row
    progress(what, count)


def _check_money(
    report: AuditReport,
    money: Conservation,
    book: TransferBook,
    *,
    later_looks: Sequence[Store],
    now_ms: int,
    max_in_flight_s: float,
) -> None:
    """Check conservation, every transfer, and that both agree on the money in flight,
    over the whole store. With ``later_looks`` (the stores of shards scanned in separate
    snapshots), first look for what a transfer's later leg implies but an earlier
    snapshot missed."""
    for problem in money.problems():
        report.problem(problem)
    if later_looks:
        _look_again(book, later_looks)
    report.money = money
    report.transfers = book.check(now_ms, int(max_in_flight_s * 1000), report.problem)
    for problem in money.in_flight_problems(book.in_flight_by_sums(report.transfers)):
        report.problem(problem)


def _look_again(book: TransferBook, stores: Sequence[Store]) -> None:
    """A credit seen in one shard's snapshot whose debit was not in the other's: the
    debit may have committed after that snapshot (and likewise a refused credit before a
    return). Read them now; only what is still missing is a problem."""
    without_debit, without_refusal = book.unmatched()
    if not (without_debit or without_refusal):
        return
    debits: dict[str, JournalEntry] = {}
    refused: set[str] = set()
    credit_ids = [t + CREDIT_SUFFIX for t in without_refusal]
    for store in stores:
        debits.update(store.get_journal_entries(without_debit))
        found = store.get_requests(credit_ids)
        refused.update(
            request_id.removesuffix(CREDIT_SUFFIX)
            for request_id, row in found.items()
            if row.status is ChangeStatus.REJECTED
        )
    book.add_found_later(debits, refused)


@dataclass(frozen=True)
class _HoldBound:
    """When the audit runs, and how long past its expiry a hold may still be open."""

    now_ms: int
    overdue_ms: int


def _audit(  # noqa: PLR0917  # the audit's parts, passed down as they are
    store: Store,
    progress: Progress,
    belongs: Belongs,
    money: Conservation,
    book: TransferBook,
    bound: _HoldBound,
) -> AuditReport:
    report = AuditReport()
    placement = _Placement(report, belongs)
    held = _open_holds(store, progress, report, placement, bound)
    journaled: Counter[str] = Counter()
    replayed: dict[Account, Balance] = {}
    previous: JournalEntry | None = None
    for entry in _counted(iter_journal(store), "journal entries", progress):
        report.journal_entries += 1
        placement.check(entry.user_id, "journal entries")
        journaled[entry.request_id] += 1
        _replay(report, replayed, entry)
        _check_stamp(report, previous, entry)
        previous = entry
        money.add_entry(entry)
        book.add_entry(entry, report.problem)
    for balance in _counted(iter_balances(store), "balances", progress):
        report.accounts += 1
        placement.check(balance.user_id, "a balance")
        money.add_balance(balance)
        _check_balance(report, balance, replayed.pop(balance.account, None))
        _check_held(report, balance, held.pop(balance.account, 0))
    _report_without_balance(report, replayed, held)
    for request_id, count in journaled.items():
        if count > 1:
            report.problem(f"request {request_id}: {count} journal entries")
    # Requests by status, whether or not their outbox row is still there: APPLIED ones
    # are journaled, REJECTED ones recorded, the outbox's rows without either in flight.
    report.requests[ChangeStatus.APPLIED.name] = len(journaled)
    rejected: set[str] = set()
    for row in _counted(iter_rejections(store), "rejections", progress):
        report.rejections += 1
        placement.check(row.request.user_id, "a rejection")
        request_id = row.request.request_id
        rejected.add(request_id)
        book.add_rejection(row.request)
        if request_id in journaled:
            report.problem(f"request {request_id}: rejected but also journaled")
    report.requests[ChangeStatus.REJECTED.name] = len(rejected)
    for row in _counted(iter_requests(store), "outbox rows", progress):
        request_id = row.request.request_id
        placement.check(row.request.user_id, "an outbox row")
        report.outbox_rows[row.status.name] += 1
        if request_id in journaled:
            if row.status is ChangeStatus.REJECTED:
                report.problem(f"request {request_id}: status REJECTED but journaled")
        elif row.status is ChangeStatus.APPLIED:
            report.problem(f"request {request_id}: status APPLIED but 0 journal entries")
        elif request_id not in rejected and not row.status.is_final:
            report.requests[row.status.name] += 1
    report.decided = set(journaled) | rejected
    return report


def _open_holds(
    store: Store,
    progress: Progress,
    report: AuditReport,
    placement: _Placement,
    bound: _HoldBound,
) -> dict[Account, int]:
    """What the open holds of each account still hold; reports a hold open past its
    expiry plus the bound."""
    held: dict[Account, int] = {}
    for hold in _counted(iter_holds(store), "holds", progress):
        report.holds += 1
        placement.check(hold.user_id, "a hold")
        if hold.state is not HoldState.OPEN:
            continue
        report.open_holds += 1
        account = Account(hold.user_id, hold.currency)
        held[account] = held.get(account, 0) + hold.remaining
        overdue_ms = bound.now_ms - hold.expires_at_ms
        if overdue_ms > bound.overdue_ms:
            report.problem(
                f"hold {hold.hold_id} of {account}: still open {overdue_ms // 1000} s past its"
                " expiry (its HOLD_EXPIRE was never sent or never applied)"
            )
    return held


def _replay(report: AuditReport, replayed: dict[Account, Balance], entry: JournalEntry) -> None:
    account = Account(entry.user_id, entry.currency)
    before = replayed.get(account) or Balance(entry.user_id, entry.currency)
    if entry.version != before.version + 1:
        report.problem(f"{account}: version {entry.version} follows {before.version}")
    if entry.available_after < 0 or entry.frozen_after < 0:
        report.problem(f"{account} v{entry.version}: negative amount after the change")
    # A hold change replays as the plain change it amounts to; its lock rules are the hold
    # change's own (an expiry passes a full lock), checked on its type first.
    kind = plain_type(entry.type, entry.transfer_id)
    plain = before
    if kind is not entry.type:
        if before.lock and refused_by_lock(before.lock, entry.type):
            report.problem(f"{account} v{entry.version}: journaled change was not applicable")
        plain = dataclasses.replace(before, lock=0)
    result = apply_change(
        plain, ChangeRequest(entry.request_id, entry.user_id, entry.currency, kind, entry.amount)
    )
    if isinstance(result, Applied) and kind is not entry.type:
        result = Applied(dataclasses.replace(result.balance, lock=before.lock))
    if not isinstance(result, Applied):
        report.problem(f"{account} v{entry.version}: journaled change was not applicable")
    elif (result.balance.available, result.balance.frozen) != (
        entry.available_after,
        entry.frozen_after,
    ):
        report.problem(f"{account} v{entry.version}: amounts after differ from the replay")
    # A journaled change applied, so it passed the lock the replay has reached: a debit
    # journaled under a debit lock shows as "not applicable" above.
    lock = result.balance.lock if isinstance(result, Applied) else before.lock
    replayed[account] = Balance(
        entry.user_id, entry.currency, entry.available_after, entry.frozen_after, entry.version,
        lock,
    )  # fmt: skip


def _check_stamp(report: AuditReport, previous: JournalEntry | None, entry: JournalEntry) -> None:
    """An account's stamps never fall as its versions rise: reads by time find a moment by
    halving its versions (``Store.journal_version_before``). The journal comes in account
    and version order, so the entry before is the account's previous one, if any."""
    if (
        previous is not None
        and (previous.user_id, previous.currency) == (entry.user_id, entry.currency)
        and entry.applied_at_ms < previous.applied_at_ms
    ):
        report.problem(
            f"{Account(entry.user_id, entry.currency)} v{entry.version}: stamped"
            f" {entry.applied_at_ms}, before v{previous.version}'s {previous.applied_at_ms}"
        )


def _report_without_balance(
    report: AuditReport, replayed: Iterable[Account], held: Iterable[Account]
) -> None:
    """Accounts the journal or open holds name and the balances do not."""
    for account in replayed:
        report.problem(f"{account}: journal entries but no balance row")
    for account in held:
        report.problem(f"{account}: open holds but no balance row")


def _check_held(report: AuditReport, balance: Balance, open_amount: int) -> None:
    """The open holds of an account are part of its frozen amount."""
    if open_amount > balance.frozen:
        report.problem(
            f"{balance.account}: open holds of {format_amount(open_amount)} but frozen"
            f" {format_amount(balance.frozen)}"
        )


def _check_balance(report: AuditReport, balance: Balance, replay: Balance | None) -> None:
    expected = replay or Balance(balance.user_id, balance.currency)
    if balance.available < 0 or balance.frozen < 0:
        report.problem(f"{balance.account}: negative balance")
    if balance.lock != expected.lock:
        report.problem(
            f"{balance.account}: lock {balance.lock} but the journal replays to {expected.lock}"
        )
    if (balance.available, balance.frozen, balance.version) != (
        expected.available,
        expected.frozen,
        expected.version,
    ):
        report.problem(
            f"{balance.account}: balance {format_amount(balance.available)}/"
            f"{format_amount(balance.frozen)} v{balance.version} but the journal replays to "
            f"{format_amount(expected.available)}/{format_amount(expected.frozen)}"
            f" v{expected.version}"
        )
