"""The service layer: what every API (gRPC and REST) calls, in domain terms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from ledgerd.cache.base import BalanceCache
from ledgerd.cache.fence import CacheFence
from ledgerd.domain.holds import Hold
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    RejectReason,
    StoredRequest,
)
from ledgerd.errors import RequestNotFound
from ledgerd.history import JournalHistory
from ledgerd.outbox.acceptor import Acceptor
from ledgerd.outcomes import OutcomeHub
from ledgerd.reads import AnswerWriteBack, BalanceReads
from ledgerd.store.base import Store
from ledgerd.transfers import TransferAnswer, leg_ids, read_transfer


@dataclass(frozen=True, slots=True)
class ChangeAnswer:
    """The state of one change request as an API answers it."""

    request_id: str
    status: ChangeStatus
    reject_reason: RejectReason = RejectReason.NONE
    balance: Balance | None = None
    duplicate: bool = False


class LedgerService:
    """Reads and changes balances; async, safe to call from many requests at once."""

    def __init__(
        self,
        store: Store,
        cache: BalanceCache,
        acceptor: Acceptor,
        outcomes: OutcomeHub,
        *,
        fence: CacheFence | None = None,
        wait_max_s: float = 10.0,
        wait_poll_interval_s: float = 0.05,
    ) -> None:
        self._store = store
        self._acceptor = acceptor
        self._outcomes = outcomes
        self._wait_max_s = wait_max_s
        self._wait_poll_interval_s = wait_poll_interval_s
        self._write_back = AnswerWriteBack(store, cache, fence)
        self._reads = BalanceReads(store, cache, self._write_back)
        # As-of balances and statements: journal reads beside the live path.
        self.history = JournalHistory(store)

    # -- reads ----------------------------------------------------------------
    async def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        """One currency (zeros if untouched), or every currency the user has.

        One currency reads the cache, then the store (``ledgerd.reads``), without
        blocking the event loop. Never this process's consumer memory: it runs ahead
        of the shared cache, so a read through another process could then return an
        older version than this one did.
        """
        if currency is None:
            return await self._reads.get_all(user_id)
        return [await self._reads.get(Account(user_id, currency))]

    async def close(self) -> None:
        """Close the read path's cache connection; call on the loop that served."""
        await self._reads.close()

    async def list_journal(
        self, user_id: int, currency: str, after_version: int, limit: int
    ) -> Sequence[JournalEntry]:
        return await asyncio.to_thread(
            self._store.get_journal, user_id, currency, after_version, limit
        )

    async def get_hold(self, user_id: int, hold_id: str) -> Hold:
        """The hold as its partition's consumer last committed it.

        Raises: RequestNotFound: the user has no hold with this id (yet: a HOLD just
            accepted reads as not found until it is applied).
        """
        found = await asyncio.to_thread(self._store.load_holds, {(user_id, hold_id)})
        hold = found.get(hold_id)
        if hold is None or hold.user_id != user_id:
            raise RequestNotFound(hold_id)
        return hold

    async def get_change(self, request_id: str) -> ChangeAnswer:
        """Raises: RequestNotFound: no such request."""
        answers = await self._current({request_id: False})
        if request_id not in answers:
            raise RequestNotFound(request_id)
        return answers[request_id]

    # -- changes --------------------------------------------------------------
    async def change(
        self, requests: Sequence[ChangeRequest], *, wait: bool, deadline: float | None
    ) -> list[ChangeAnswer]:
        """Accept the requests durably; with ``wait``, also wait for their outcomes
        until shortly before ``deadline`` (``time.monotonic()``), at most wait_max_s.

        Raises:
            RequestConflict, Overloaded, StoreUnavailable: from acceptance.
        """
        acceptances = await self._acceptor.accept(requests)
        if not wait and not any(a.duplicate for a in acceptances):
            # The common answer (every change new, PENDING), in request order: accept()
            # answers in the order asked.
            return [_answer(a.stored, False) for a in acceptances]
        answers = {a.stored.request.request_id: _answer(a.stored, a.duplicate) for a in acceptances}
        duplicates_applied = {
            rid: True
            for rid, answer in answers.items()
            if answer.duplicate and answer.status is ChangeStatus.APPLIED
        }
        if duplicates_applied:
            answers.update(await self._current(duplicates_applied))
        if wait:
            answers.update(await self._wait(answers, deadline))
        return [answers[r.request_id] for r in requests]

    async def _wait(
        self, answers: Mapping[str, ChangeAnswer], deadline: float | None
    ) -> dict[str, ChangeAnswer]:
        pending = {rid: a.duplicate for rid, a in answers.items() if not a.status.is_final}
        updated: dict[str, ChangeAnswer] = {}

        async def settled() -> list[str]:
            nonlocal pending
            current = await self._current(pending)
            updated.update(current)
            pending = {rid: dup for rid, dup in pending.items() if not current[rid].status.is_final}
            return list(pending)

        if pending:
            await self._wait_for_outcomes(list(pending), settled, deadline)
        return updated

    async def _wait_for_outcomes(
        self,
        request_ids: list[str],
        settled: Callable[[], Awaitable[list[str]]],
        deadline: float | None,
    ) -> None:
        """Call ``settled`` (which reads the current state and returns the request ids still
        without an outcome) whenever one of ``request_ids`` may have been decided: woken by
        this process's consumer, or polled with backoff for the others. Stops when none is
        left, or a little before ``deadline`` (at most wait_max_s)."""
        now = time.monotonic()
        until = now + self._wait_max_s
        if deadline is not None:
            # Answer a little before the caller gives up, so it gets the current status.
            margin = max(0.02, min(0.25, (deadline - now) * 0.1))
            until = min(until, deadline - margin)
        interval = self._wait_poll_interval_s
        while request_ids:
            event = self._outcomes.register(request_ids)
            try:
                still = await settled()
                remaining = until - time.monotonic()
                if not still or remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(event.wait(), timeout=min(interval, remaining))
                except TimeoutError:
                    interval = min(interval * 2, 0.5)
            finally:
                self._outcomes.unregister(request_ids, event)
            request_ids = still

    # -- transfers ------------------------------------------------------------
    async def transfer(
        self, debit: ChangeRequest, *, wait: bool, deadline: float | None
    ) -> TransferAnswer:
        """Accept a transfer (its debit leg) durably; with ``wait``, also wait until it is
        final (both legs applied, or refused) until shortly before ``deadline``.

        Raises:
            RequestConflict, Overloaded, StoreUnavailable: from acceptance.
        """
        (acceptance,) = await self._acceptor.accept([debit])
        answer = TransferAnswer(acceptance.stored.request, ChangeStatus.PENDING)
        if acceptance.duplicate:
            answer = await self._read_transfer(debit.request_id, duplicate=True)
        if wait and not answer.status.is_final:
            latest = answer

            async def settled() -> list[str]:
                nonlocal latest
                latest = await self._read_transfer(debit.request_id, answer.duplicate)
                return [] if latest.status.is_final else leg_ids(debit.request_id)

            await self._wait_for_outcomes(leg_ids(debit.request_id), settled, deadline)
            answer = latest
        return answer

    async def get_transfer(self, transfer_id: str) -> TransferAnswer:
        """Raises: RequestNotFound: no transfer has this id."""
        return await self._read_transfer(transfer_id, duplicate=False)

    async def _read_transfer(self, transfer_id: str, duplicate: bool) -> TransferAnswer:
        answer, wait_s = await asyncio.to_thread(self._read_transfer_now, transfer_id, duplicate)
        if wait_s:
            await asyncio.sleep(wait_s)
        return answer

    def _read_transfer_now(self, transfer_id: str, duplicate: bool) -> tuple[TransferAnswer, float]:
        began = self._write_back.now()
        answer = read_transfer(self._store, transfer_id, duplicate)
        if answer is None:
            raise RequestNotFound(transfer_id)
        answered = {b.account for b in (answer.from_balance, answer.to_balance) if b is not None}
        return answer, self._write_back.publish_current(answered, began)

    async def _current(self, duplicates: Mapping[str, bool]) -> dict[str, ChangeAnswer]:
        """Current answers from the store, with the balance after each APPLIED change."""
        answers, wait_s = await asyncio.to_thread(self._read_current, duplicates)
        if wait_s:
            await asyncio.sleep(wait_s)
        return answers

    def _read_current(
        self, duplicates: Mapping[str, bool]
    ) -> tuple[dict[str, ChangeAnswer], float]:
        """The answers, and the seconds to wait before giving them (see ``AnswerWriteBack``)."""
        began = self._write_back.now()
        stored = dict(self._store.get_requests(list(duplicates)))
        # Applied requests whose outbox row was cleaned up live on in the journal.
        wanted = [
            rid
            for rid in duplicates
            if rid not in stored or stored[rid].status is ChangeStatus.APPLIED
        ]
        entries = self._store.get_journal_entries(wanted) if wanted else {}
        for rid, journaled in entries.items():
            stored.setdefault(rid, journaled.as_stored_request())
        answers: dict[str, ChangeAnswer] = {}
        for rid, row in stored.items():
            entry = entries.get(rid)
            answers[rid] = _answer(
                row, duplicates[rid], entry.balance_after if entry is not None else None
            )
        # The cache gets each account's current balance, never the (maybe older) balance
        # after: that may only raise an entry, and a read that missed could then create an
        # older one (``ledgerd.cache.base``).
        answered = {a.balance.account for a in answers.values() if a.balance is not None}
        return answers, self._write_back.publish_current(answered, began)


def _answer(stored: StoredRequest, duplicate: bool, balance: Balance | None = None) -> ChangeAnswer:
    return ChangeAnswer(
        request_id=stored.request.request_id,
        status=stored.status,
        reject_reason=stored.reject_reason,
        balance=balance if stored.status is ChangeStatus.APPLIED else None,
        duplicate=duplicate,
    )
