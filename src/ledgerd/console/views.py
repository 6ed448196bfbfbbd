"""What the operator's page shows, gathered from this process and its backends.

Every answer is bounded (``*_SHOWN`` constants) and the overview is computed at most once
a second whatever the number of open pages, so a page left open costs the service a few
store and log reads every couple of seconds. Nothing here writes. Memos are cut to
``MEMO_SHOWN_CHARS``; signatures, secrets and message bodies are never read into an
answer (a dead letter shows its headers' error, never its value).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY

from ledgerd.constants import CACHE_FENCE
from ledgerd.consumer.worker import BatchConsumer
from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import Balance, ChangeStatus, JournalEntry, RejectReason, StoredRequest
from ledgerd.errors import LedgerError
from ledgerd.log.base import LogRecord
from ledgerd.runtime.health import Health
from ledgerd.store.base import LeaderLockRow
from ledgerd.transfers import read_transfer
from ledgerd.wiring.parts import Parts

JSON = dict[str, Any]

MEMO_SHOWN_CHARS = 24
ERROR_SHOWN_CHARS = 200
JOURNAL_SHOWN = 20
BALANCES_SHOWN = 16
DLQ_SHOWN = 10
# The overview is shared by every viewer for this long: N open pages cost what one does.
OVERVIEW_FRESH_S = 1.0
# History behind the charts (totals only: a few numbers a sample).
HISTORY_KEPT_S = 600.0
# Per-partition applied rate: positions now against those about this long ago.
RATE_WINDOW_S = 10.0


def memo_shown(memo: str) -> str:
    """A memo cut to ``MEMO_SHOWN_CHARS``: the page identifies a change, it does not
    publish what a client wrote."""
    return memo if len(memo) <= MEMO_SHOWN_CHARS else memo[:MEMO_SHOWN_CHARS] + "…"


@dataclass(frozen=True, slots=True)
class _Sample:
    at_s: float
    positions: Mapping[int, int]  # committed next offset by partition
    lag: int  # summed over partitions


class Console:
    """The page's data: an overview (health, partitions, outbox, DLQ, locks, audit and the
    charts' history) and lookups of an account, a request and a transfer."""

    def __init__(self, parts: Parts, health: Callable[[], Awaitable[Health]]) -> None:
        self._parts = parts
        self._health = health
        self._overview: JSON | None = None
        self._overview_at_s = 0.0
        self._overview_lock = asyncio.Lock()
        self._history: deque[tuple[float, float, int]] = deque()  # (at, applied/s, lag)
        self._recent: deque[_Sample] = deque()
        self._dlq_ends: Mapping[int, int] = {}
        self._dlq_latest: list[JSON] = []

    # -- overview --------------------------------------------------------------
    async def overview(self) -> JSON:
        """The overview, recomputed when older than ``OVERVIEW_FRESH_S``."""
        async with self._overview_lock:
            now = time.monotonic()
            if self._overview is None or now - self._overview_at_s >= OVERVIEW_FRESH_S:
                health = await self._health()
                pipeline = await asyncio.to_thread(self._pipeline)
                self._overview = {
                    "process": self._process(),
                    "health": {
                        "live": health.live,
                        "ready": health.ready,
                        "status": "SERVING" if health.serving else "NOT_SERVING",
                        "components": dict(health.components),
                    },
                    **pipeline,
                    "audit": _audit(),
                }
                self._overview_at_s = time.monotonic()
            return self._overview

    async def sample(self) -> None:
        """Add a point to the charts' history (the sampler's call while no page asks)."""
        async with self._overview_lock:
            await asyncio.to_thread(_guarded, self._partitions)

    def _process(self) -> JSON:
        settings = self._parts.settings
        roles = self._parts.roles
        return {
            "pid": os.getpid(),
            "roles": [
                name
                for name, on in (
                    ("api", roles.api),
                    ("relay", roles.relay),
                    ("consumer", roles.consumer),
                    ("cache_updater", roles.cache_updater),
                )
                if on
            ],
            "topic": settings.topic,
            "partitions": settings.partitions,
            "now_ms": int(time.time() * 1000),
        }

    def _pipeline(self) -> JSON:
        """Partitions, outbox, DLQ and history: the reads of the store and the log (on a
        thread: they block). A backend that fails costs its panel, not the page."""
        answer: JSON = {}
        answer["partitions"] = _guarded(self._partitions)
        answer["outbox"] = _guarded(self._outbox)
        answer["dlq"] = _guarded(self._dlq)
        answer["leader_locks"] = self._leader_locks()
        cutoff = time.time() - HISTORY_KEPT_S
        while self._history and self._history[0][0] < cutoff:
            self._history.popleft()
        answer["history"] = [
            {"at_s": round(at, 3), "applied_per_s": round(rate, 2), "lag": lag}
            for at, rate, lag in self._history
        ]
        return answer

    def _partitions(self) -> JSON:
        settings, backends = self._parts.settings, self._parts.backends
        positions = backends.store.get_positions(settings.topic)
        ends = backends.event_log.end_offsets(settings.topic)
        consumer = self._parts.find(BatchConsumer)
        owned = set(consumer.owned_partitions) if consumer is not None else set()
        paused = set(consumer.paused_partitions) if consumer is not None else set()
        now_s = time.time()
        lags = {p: max(ends.get(p, 0) - positions.get(p, 0), 0) for p in range(settings.partitions)}
        then = self._sample_before(now_s - RATE_WINDOW_S)
        rows = []
        for partition in range(settings.partitions):
            committed = positions.get(partition, 0)
            rate = None
            if then is not None and now_s > then.at_s:
                rate = (committed - then.positions.get(partition, 0)) / (now_s - then.at_s)
            if partition in owned:
                owner = f"this process (pid {os.getpid()})"
            elif consumer is not None:
                owner = "another consumer"
            else:
                owner = "a consumer process"
            rows.append(
                {
                    "partition": partition,
                    "owner": owner,
                    "owned_here": partition in owned,
                    "paused": partition in paused,
                    "committed_offset": committed,
                    "end_offset": ends.get(partition, 0),
                    "lag": lags[partition],
                    "applied_per_s": round(rate, 2) if rate is not None else None,
                }
            )
        self._record(_Sample(now_s, dict(positions), sum(lags.values())))
        return {"rows": rows, "lag": sum(lags.values())}

    def _sample_before(self, at_s: float) -> _Sample | None:
        """The newest recent sample taken at or before ``at_s``, else the oldest one."""
        chosen = None
        for sample in self._recent:
            if sample.at_s <= at_s or chosen is None:
                chosen = sample
        return chosen

    def _record(self, sample: _Sample) -> None:
        previous = self._recent[-1] if self._recent else None
        if previous is not None and sample.at_s > previous.at_s:
            applied = sum(sample.positions.values()) - sum(previous.positions.values())
            rate = max(applied, 0) / (sample.at_s - previous.at_s)
            self._history.append((sample.at_s, rate, sample.lag))
        self._recent.append(sample)
        # Enough positions for the rate window, and no more (a map of every partition each).
        while len(self._recent) > 2 and self._recent[1].at_s <= sample.at_s - RATE_WINDOW_S:
            self._recent.popleft()

    def _outbox(self) -> JSON:
        store = self._parts.backends.store
        counts = store.count_unfinished()
        oldest_ms = store.oldest_unfinished_ms()
        by_status = {status.name.lower(): counts.get(status, 0) for status in _UNFINISHED}
        age_s = max(time.time() - oldest_ms / 1000, 0.0) if oldest_ms is not None else None
        return {
            **by_status,
            "backlog": sum(by_status.values()),
            "oldest_unfinished_age_s": round(age_s, 3) if age_s is not None else None,
        }

    def _dlq(self) -> JSON:
        settings, event_log = self._parts.settings, self._parts.backends.event_log
        ends = event_log.end_offsets(settings.dlq_topic)
        if ends != self._dlq_ends:
            # Reading a record costs a Kafka consumer: only when the DLQ grew.
            latest: list[JSON] = []
            for partition, end in sorted(ends.items(), key=lambda item: -item[1]):
                if end <= 0 or len(latest) >= DLQ_SHOWN:
                    continue
                record = event_log.last_record(settings.dlq_topic, partition)
                if record is not None:
                    latest.append(_dead_letter(record))
            self._dlq_latest, self._dlq_ends = latest, dict(ends)
        return {
            "topic": settings.dlq_topic,
            "size": sum(ends.values()),
            "latest": self._dlq_latest,
            "latest_is": "the newest message of each partition",
        }

    def _leader_locks(self) -> list[JSON]:
        """Every leader lock in the store with its holder (any process: the owner names
        host and pid), marked where this process holds it; the read fence's row is not a
        lock and stays out. Without the store, only this process's own electors."""
        held = {
            name: elector.token
            for name, elector in self._parts.electors.items()
            if elector.token is not None
        }
        shown: list[tuple[str, LeaderLockRow | None]]
        try:
            rows = self._parts.backends.store.leader_locks()
        except LedgerError:
            shown = [(name, None) for name in sorted(self._parts.electors)]
        else:
            shown = [(row.name, row) for row in rows if row.name != CACHE_FENCE]
        answer: list[JSON] = []
        for name, row in shown:
            token = held.get(name)
            if token is not None:
                holder = f"this process (pid {os.getpid()})"
            elif row is None:
                holder = "another process"
            elif row.expires_in_ms > 0 and row.owner:
                holder = row.owner
            else:
                holder = "nobody (free)"
            epoch = token.epoch if token is not None else (row.epoch if row else None)
            answer.append(
                {"name": name, "held_here": token is not None, "epoch": epoch, "holder": holder}
            )
        return answer

    # -- lookups -----------------------------------------------------------------
    async def account(self, user_id: int, currency: str | None) -> JSON:
        """Balances of a user (in one currency or all) and their newest journal entries."""
        return await asyncio.to_thread(self._account, user_id, currency)

    def _account(self, user_id: int, currency: str | None) -> JSON:
        store = self._parts.backends.store
        balances = list(store.get_balances(user_id, currency))[:BALANCES_SHOWN]
        if currency is not None and not balances:
            balances = [Balance(user_id, currency)]
        entries: list[JournalEntry] = []
        for balance in balances:
            after = max(balance.version - JOURNAL_SHOWN, 0)
            entries.extend(store.get_journal(user_id, balance.currency, after, JOURNAL_SHOWN))
        entries.sort(key=lambda e: (e.applied_at_ms, e.version), reverse=True)
        return {
            "user_id": user_id,
            "balances": [_balance(b) for b in balances],
            "journal": [_entry(e) for e in entries[:JOURNAL_SHOWN]],
        }

    async def request(self, request_id: str) -> JSON | None:
        """A request as GetChange answers it, with its fields (memo cut); None if unknown."""
        return await asyncio.to_thread(self._request, request_id)

    def _request(self, request_id: str) -> JSON | None:
        store = self._parts.backends.store
        stored = store.get_requests([request_id]).get(request_id)
        entry = store.get_journal_entries([request_id]).get(request_id)
        if stored is None and entry is not None:
            stored = entry.as_stored_request()  # the outbox row was cleaned up
        if stored is None:
            return None
        answer = _request(stored)
        answer["balance_after"] = _balance(entry.balance_after) if entry is not None else None
        return answer

    async def transfer(self, transfer_id: str) -> JSON | None:
        """A transfer as GetTransfer answers it; None if no transfer has this id."""
        return await asyncio.to_thread(self._transfer, transfer_id)

    def _transfer(self, transfer_id: str) -> JSON | None:
        answer = read_transfer(self._parts.backends.store, transfer_id)
        if answer is None:
            return None
        debit = answer.debit
        return {
            "transfer_id": transfer_id,
            "status": answer.status.name,
            "reject_reason": _reason(answer.reject_reason),
            "from_user_id": debit.user_id,
            "to_user_id": debit.counterparty_user_id,
            "currency": debit.currency,
            "amount": format_amount(debit.amount),
            "memo": memo_shown(debit.memo),
            "debited": answer.debited,
            "from_balance": _balance(answer.from_balance) if answer.from_balance else None,
            "to_balance": _balance(answer.to_balance) if answer.to_balance else None,
        }


_UNFINISHED = (ChangeStatus.PENDING, ChangeStatus.SENT, ChangeStatus.FAILED)


def _guarded(read: Callable[[], JSON]) -> JSON:
    try:
        return read()
    except LedgerError as exc:
        return {"error": str(exc)[:ERROR_SHOWN_CHARS]}


def _audit() -> JSON:
    """The last periodic audit of this process, from its metrics (only the outbox lock's
    holder audits; elsewhere it never ran)."""
    last_run_s = REGISTRY.get_sample_value("ledgerd_audit_last_run_timestamp_seconds") or 0.0
    if not last_run_s:
        return {"ran": False}
    problems = REGISTRY.get_sample_value("ledgerd_audit_problems") or 0.0
    in_flight = REGISTRY.get_sample_value("ledgerd_audit_transfers_in_flight") or 0.0
    return {
        "ran": True,
        "ok": problems == 0,
        "last_run_unix_s": round(last_run_s, 3),
        "problems": int(problems),
        "transfers_in_flight": int(in_flight),
    }


def _dead_letter(record: LogRecord) -> JSON:
    """A dead letter by its headers: its value (the change, signed) is never shown."""
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}
    source = "{}[{}]@{}".format(
        headers.get("source-topic", "?"),
        headers.get("source-partition", "?"),
        headers.get("source-offset", "?"),
    )
    return {
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace")[:32],
        "reason": headers.get("reason", ""),
        "error": headers.get("error", "")[:ERROR_SHOWN_CHARS],
        "source": source,
    }


def _reason(reason: RejectReason) -> str | None:
    return reason.name if reason is not RejectReason.NONE else None


def _balance(balance: Balance) -> JSON:
    return {
        "user_id": balance.user_id,
        "currency": balance.currency,
        "available": format_amount(balance.available),
        "frozen": format_amount(balance.frozen),
        "version": balance.version,
    }


def _entry(entry: JournalEntry) -> JSON:
    return {
        "request_id": entry.request_id,
        "currency": entry.currency,
        "type": entry.type.name,
        "amount": format_amount(entry.amount),
        "available_after": format_amount(entry.available_after),
        "frozen_after": format_amount(entry.frozen_after),
        "version": entry.version,
        "applied_at_ms": entry.applied_at_ms,
        "memo": memo_shown(entry.memo),
    }


def _request(stored: StoredRequest) -> JSON:
    request = stored.request
    return {
        "request_id": request.request_id,
        "status": stored.status.name,
        "reject_reason": _reason(stored.reject_reason),
        "user_id": request.user_id,
        "currency": request.currency,
        "type": request.type.name,
        "amount": format_amount(request.amount),
        "memo": memo_shown(request.memo),
        "transfer_id": request.transfer_id or None,
    }
