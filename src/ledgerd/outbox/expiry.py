"""The hold expiry sweep: a leader-only job that sends each due hold's HOLD_EXPIRE.

A hold past its expiry is released through the outbox and the log like every change,
never by the consumer's clock: the sweep accepts a HOLD_EXPIRE whose request id is the
hold's id and ``~expire``, so a second sweep, another leader or a sweep after a crash
sends the same request, which the outbox and the journal accept once. Whether a capture
or the expiry wins is then the order of the two in the account's partition.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence

import structlog

from ledgerd import metrics
from ledgerd.domain.holds import Hold
from ledgerd.domain.model import EXPIRE_SUFFIX, ChangeRequest, ChangeType, StoredRequest
from ledgerd.runtime.periodic import PeriodicJob
from ledgerd.store.base import Store

log = structlog.get_logger(__name__)

# Hands accepted rows to this process's relay: (requests, accepted at, publish group).
HandOff = Callable[[Sequence[ChangeRequest], int, str], None]


def expiry_of(hold: Hold) -> ChangeRequest:
    """The one request that expires ``hold`` (the same whoever sends it, however often)."""
    return ChangeRequest(
        hold.hold_id + EXPIRE_SUFFIX, hold.user_id, hold.currency, ChangeType.HOLD_EXPIRE, 0,
        hold_id=hold.hold_id,
    )  # fmt: skip


class HoldExpirySweep(PeriodicJob):
    """Every ``interval_s`` while ``is_leader()``: accept the expiry of every open hold past
    its expiry (at most ``batch_max`` a round) and hand the new ones to the relay."""

    def __init__(
        self,
        store: Store,
        is_leader: Callable[[], bool],
        interval_s: float,
        *,
        hand_off: HandOff | None = None,
        batch_max: int = 1000,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        super().__init__("hold-expiry", interval_s, self._round)
        self._store = store
        self._is_leader = is_leader
        self._hand_off = hand_off
        self._batch_max = batch_max
        self._clock_ms = clock_ms
        # Publish groups: unique per sweep start, then counted (as the consumer's).
        self._group_prefix = "x" + secrets.token_hex(8)
        self._group_numbers = itertools.count(1)

    def _round(self) -> None:
        self.run_once()

    def run_once(self) -> int:
        """One round; returns how many expiries it accepted (0 when not the leader)."""
        if not self._is_leader():
            return 0
        now_ms = self._clock_ms()
        due = self._store.due_holds(now_ms, self._batch_max)
        if not due:
            return 0
        expiries = {request.request_id: request for request in map(expiry_of, due)}
        new: list[ChangeRequest] = []

        def choose_new(stored: Mapping[str, StoredRequest]) -> Sequence[ChangeRequest]:
            # Sent before (its outbox row, or its outcome, is stored): not again.
            new[:] = [r for rid, r in expiries.items() if rid not in stored]
            return list(new)

        group = None if self._hand_off is None else self._next_group()
        self._store.accept_requests(list(expiries), choose_new, now_ms, group)
        if new:
            metrics.HOLDS_EXPIRED.inc(len(new))
            log.info("hold expiries sent", count=len(new))
            if self._hand_off is not None and group is not None:
                self._hand_off(new, now_ms, group)
        return len(new)

    def _next_group(self) -> str:
        return f"{self._group_prefix}-{next(self._group_numbers)}"
