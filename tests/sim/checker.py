"""The simulation's checks: reads never go back in time, and every change applied exactly once.

Read invariant (docs/architecture.md §1): a read that *began* after an answer of
version v for an account *completed* (APPLIED to a waiting caller, a duplicate
or GetChange answering APPLIED, or a value returned by a read), through any
process, returns a version >= v. Per account, the checker keeps the answers in
completion order with the running maximum, so each read finds the floor that
held when it began by bisection.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ledgerd.domain.model import Account, Balance, ChangeRequest
from sim.store import SimStore


@dataclass
class _Answers:
    times: list[float] = field(default_factory=list)
    floors: list[int] = field(default_factory=list)  # running max of versions answered
    who: list[str] = field(default_factory=list)  # which answer set each floor


@dataclass
class Checker:
    violations: list[str] = field(default_factory=list)
    answers: dict[Account, _Answers] = field(default_factory=dict)
    reads: int = 0
    applied_answers: int = 0

    def answered(
        self, balance: Balance, *, began: float, now: float, what: str, is_read: bool
    ) -> None:
        """An answer giving ``balance`` completed at ``now``; a read is checked first."""
        seen = self.answers.setdefault(balance.account, _Answers())
        if is_read:
            self.reads += 1
            at = bisect.bisect_left(seen.times, began) - 1  # completed strictly before
            if at >= 0 and balance.version < seen.floors[at]:
                self.violations.append(
                    f"t={now:.6f} {what} read {balance.account.user_id}:"
                    f"{balance.account.currency} v{balance.version} (began t={began:.6f}),"
                    f" but v{seen.floors[at]} was answered before it began"
                    f" ({seen.who[at]})"
                )
        else:
            self.applied_answers += 1
        previous = seen.floors[-1] if seen.floors else 0
        seen.times.append(now)
        if balance.version > previous:
            seen.floors.append(balance.version)
            seen.who.append(f"{what} v{balance.version} at t={now:.6f}")
        else:
            seen.floors.append(previous)
            seen.who.append(seen.who[-1] if seen.who else what)

    def check_ledger(self, store: SimStore, accepted: dict[str, ChangeRequest]) -> None:
        """Exactly once: every accepted deposit is in the journal once, and each balance is
        the sum of its account's deposits, its version their count, the journal contiguous."""
        expected: dict[Account, list[ChangeRequest]] = {}
        for request in accepted.values():
            expected.setdefault(request.account, []).append(request)
            if request.request_id not in store.journal:
                self.violations.append(f"accepted {request.request_id} never applied")
        for rid in store.journal:
            if rid not in accepted:
                self.violations.append(f"journal holds {rid}, never accepted")
        for account, requests in expected.items():
            balance = store.balances.get(account, Balance(account.user_id, account.currency))
            applied = [r for r in requests if r.request_id in store.journal]
            want_available = sum(r.amount for r in applied)
            if (balance.available, balance.version) != (want_available, len(applied)):
                self.violations.append(
                    f"{account}: store holds {balance.available} v{balance.version}, model"
                    f" {want_available} v{len(applied)}"
                )
            versions = sorted(
                store.journal[r.request_id].version
                for r in applied
                if r.request_id in store.journal
            )
            if versions != list(range(1, len(applied) + 1)):
                self.violations.append(f"{account}: journal versions {versions}")
