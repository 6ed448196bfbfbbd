"""``ledgerd audit``: check the store's invariants, readable on a live system.

Per account: the balance equals the replay of its journal, versions run
1, 2, 3 … without gaps, and no amount is ever negative. Per request: a
request_id is journaled at most once and is never both journaled and
rejected. Outbox rows without an outcome (PENDING/SENT/FAILED) are "in
flight", not errors; rows written before schema 3 that recorded their own
outcome must agree with the journal.

The whole scan reads one snapshot of the store, so it is exact on a live system.

With database shards, ``audit_shards`` audits each shard in its own snapshot, checks
that every row is in the shard of its user's partition, and adds the reports up,
checking that no request has an outcome in two shards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
)
from ledgerd.domain.rules import Applied, apply_change
from ledgerd.store.base import Store
from ledgerd.store.scan import iter_balances, iter_journal, iter_rejections, iter_requests

MAX_REPORTED = 20


@dataclass
class AuditReport:
    accounts: int = 0
    journal_entries: int = 0
    rejections: int = 0
    requests: Counter[str] = field(default_factory=Counter)  # every request, by status
    outbox_rows: Counter[str] = field(default_factory=Counter)  # rows left, by outbox status
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    # The request ids with an outcome (journaled or rejected), for the check across shards.
    decided: set[str] = field(default_factory=set, repr=False)

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

    def summary(self) -> str:
        rows = [
            ("accounts", f"{self.accounts:,}"),
            ("journal entries", f"{self.journal_entries:,}"),
            *((f"requests {name}", f"{count:,}") for name, count in sorted(self.requests.items())),
            ("requests in flight", f"{self.in_flight:,}"),
            ("outbox rows", f"{sum(self.outbox_rows.values()):,}"),
            ("problems", f"{self.problem_count:,}"),
        ]
        width = max(len(value) for _, value in rows)
        lines = [f"{label:<22}{value:>{width}}" for label, value in rows]
        lines += [f"  - {p}" for p in self.problems]
        if self.problem_count > len(self.problems):
            lines.append(f"  … and {self.problem_count - len(self.problems)} more")
        lines.append("AUDIT OK" if self.ok else "AUDIT FAILED")
        return "\n".join(lines)


# Called now and then during a long scan with (what is being read, rows read so far).
Progress = Callable[[str, int], None]
PROGRESS_EVERY_ROWS = 100_000
T = TypeVar("T")


# Whether a user's rows belong in the store being audited (one shard of several).
Belongs = Callable[[int], bool]


def audit(
    store: Store, progress: Progress | None = None, belongs: Belongs | None = None
) -> AuditReport:
    """Scan the whole store (one snapshot) and report every broken invariant; with
    ``belongs``, also every row of a user whose rows belong elsewhere."""
    with store.snapshot():
        return _audit(store, progress or (lambda _, __: None), belongs or (lambda _: True))


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
) -> tuple[list[ShardAudit], AuditReport]:
    """Audit each shard (where, store) in its own snapshot, with the placement check;
    returns the reports and their total (counts added up, problems named by shard, and
    any request with an outcome in two shards)."""
    audits = []
    for shard_id, (where, store) in enumerate(shards):
        report = audit(store, progress, belongs=partial(_in_shard, shard_of_user, shard_id))
        audits.append(ShardAudit(shard_id, where, report))
    return audits, _total(audits)


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


def _audit(store: Store, progress: Progress, belongs: Belongs) -> AuditReport:
    report = AuditReport()
    placement = _Placement(report, belongs)
    journaled: Counter[str] = Counter()
    replayed: dict[Account, Balance] = {}
    for entry in _counted(iter_journal(store), "journal entries", progress):
        report.journal_entries += 1
        placement.check(entry.user_id, "journal entries")
        journaled[entry.request_id] += 1
        _replay(report, replayed, entry)
    for balance in _counted(iter_balances(store), "balances", progress):
        report.accounts += 1
        placement.check(balance.user_id, "a balance")
        _check_balance(report, balance, replayed.pop(balance.account, None))
    for account in replayed:
        report.problem(f"{account}: journal entries but no balance row")
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


def _replay(report: AuditReport, replayed: dict[Account, Balance], entry: JournalEntry) -> None:
    account = Account(entry.user_id, entry.currency)
    before = replayed.get(account) or Balance(entry.user_id, entry.currency)
    if entry.version != before.version + 1:
        report.problem(f"{account}: version {entry.version} follows {before.version}")
    if entry.available_after < 0 or entry.frozen_after < 0:
        report.problem(f"{account} v{entry.version}: negative amount after the change")
    result = apply_change(
        before,
        ChangeRequest(entry.request_id, entry.user_id, entry.currency, entry.type, entry.amount),
    )
    if not isinstance(result, Applied):
        report.problem(f"{account} v{entry.version}: journaled change was not applicable")
    elif (result.balance.available, result.balance.frozen) != (
        entry.available_after,
        entry.frozen_after,
    ):
        report.problem(f"{account} v{entry.version}: amounts after differ from the replay")
    replayed[account] = Balance(
        entry.user_id, entry.currency, entry.available_after, entry.frozen_after, entry.version
    )


def _check_balance(report: AuditReport, balance: Balance, replay: Balance | None) -> None:
    expected = replay or Balance(balance.user_id, balance.currency)
    if balance.available < 0 or balance.frozen < 0:
        report.problem(f"{balance.account}: negative balance")
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
