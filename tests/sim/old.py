"""Switches that bring back the read path's old mechanisms (before the read fence), in the
simulation's fakes only, so the checker can show that it finds each of them.

Taken from the code at 48fa04b (``git show 48fa04b:src/ledgerd/reads.py`` and
``...:src/ledgerd/cache/redis.py``):

* R1: ``publish_answers`` wrote an answer back and *swallowed* a failure (only a
  metric counted it): the answer was given while Redis, which other processes
  read, could still hold an older version; and ``RedisCache.put_many`` sat behind
  the breaker, so for a second after any Redis error every write of the process
  failed at once.
* R2: ``RedisCache._unwritten``: balances whose write failed, replayed before the
  process's next read or write; ``put_many`` swapped the buffer for an empty one
  *before* the replay landed, so a read running meanwhile saw no buffer and read
  the older value from Redis. (With it, answers were given unfenced, as in R1.)
* R4: every write created missing entries (the old script had no ``create``),
  so a historical write (a feed replay, a late publish, a duplicate or GetChange
  writing back its journal entry's balance after) planted an old version where
  an entry had been evicted or deleted. Since 84386f7 nothing the simulation does
  removes a balance while a lease runs (a FLUSHDB takes the lease too, eviction
  only takes keys with an expiry, a DEL of one balance is unsupported), so it no
  longer reaches R4: the ``create`` flag is now a second line of defence.
* FLUSH (seed 1355, fixed in 84386f7): the leader renewed the serving lease with
  a plain ``SET serving PX ttl``, so a lease a FLUSHDB had taken came back at the
  next renewal, over an emptied Redis into which a write-back delayed in flight
  (``create``, of a version read before the flush and since superseded) could
  still land; and a full sync had no marker, so one during which Redis was
  flushed completed and granted a lease all the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping

from ledgerd.domain.model import Account, Balance, ChangeStatus
from ledgerd.errors import CacheUnavailable
from ledgerd.reads import AnswerWriteBack
from ledgerd.service import ChangeAnswer, LedgerService, _answer
from sim.redis import SimFullSync, SimRedisClient, _versions


class SwallowingWriteBack(AnswerWriteBack):
    """R1: the old ``publish_answers``: a failed write-back is counted and the answer given."""

    def publish(self, current: Collection[Balance], read_began: float) -> float:
        if current:
            with contextlib.suppress(CacheUnavailable):
                self._cache.put_many(current, create=True)
        return 0.0


class BreakerWritesClient(SimRedisClient):
    """R1: the old ``put_many``: refused at once while the breaker is open."""

    def write(self, balances: list[Balance], *, create: bool) -> None:
        self.check_breaker()
        super().write(balances, create=create)


class UnwrittenBufferClient(BreakerWritesClient):
    """R2: the old ``_unwritten`` buffer, replayed before each read.

    ``keep_until_landed`` is the control: the buffer keeps each balance until the
    write carrying it returned, so a concurrent read replays it too.
    """

    keep_until_landed = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._unwritten: dict[Account, Balance] = {}

    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
        balances = list(balances)
        if self.keep_until_landed:
            batch = dict(self._unwritten)
        else:
            # The old code: emptied now, before the replay below has landed.
            batch, self._unwritten = self._unwritten, {}
        for balance in balances:
            queued = batch.get(balance.account)
            if queued is None or queued.version < balance.version:
                batch[balance.account] = balance
        if not batch:
            return
        if not balances:
            self.note(f"{self.name} replays its unwritten {_versions(batch.values())}")
        try:
            self.write(list(batch.values()), create=True)
        except CacheUnavailable:
            for account, balance in batch.items():
                newer = self._unwritten.get(account)
                if newer is None or newer.version < balance.version:
                    self._unwritten[account] = balance
            raise
        if not balances:
            self.note(f"{self.name} replay landed")
        for account, balance in batch.items():
            kept = self._unwritten.get(account)
            if kept is not None and kept.version <= balance.version:
                del self._unwritten[account]

    def read(self, account: Account) -> Balance | None:
        self.check_breaker()
        if self._unwritten:
            # Replay first: this process may have answered a version Redis lacks.
            self.put_many(())
        return super().read(account)


class AlwaysCreateClient(SimRedisClient):
    """R4: the old script: every write creates missing entries."""

    def write(self, balances: list[Balance], *, create: bool) -> None:
        super().write(balances, create=True)


class BalanceAfterService(LedgerService):
    """R4: the old ``_read_current``: it wrote back each APPLIED answer's balance after
    (a journal entry's, historical for a duplicate or GetChange), not the current balance."""

    def _read_current(
        self, duplicates: Mapping[str, bool]
    ) -> tuple[dict[str, ChangeAnswer], float]:
        began = self._write_back.now()
        stored = dict(self._store.get_requests(list(duplicates)))
        wanted = [
            rid
            for rid in duplicates
            if rid not in stored or stored[rid].status is ChangeStatus.APPLIED
        ]
        entries = self._store.get_journal_entries(wanted) if wanted else {}
        for rid, journaled in entries.items():
            stored.setdefault(rid, journaled.as_stored_request())
        answers = {
            rid: _answer(
                row, duplicates[rid], entries[rid].balance_after if rid in entries else None
            )
            for rid, row in stored.items()
        }
        after = [a.balance for a in answers.values() if a.balance is not None]
        return answers, self._write_back.publish(after, began)


class UnmarkedFullSync(SimFullSync):
    """FLUSH (marker half): the old ``RedisFullSync``: no marker set, none checked by
    ``complete``."""

    check_marker = False

    def __init__(self, client: SimRedisClient) -> None:
        self._client = client
        self._instance = client.call(lambda: client.server.instance)


class UncheckedLeaseClient(SimRedisClient):
    """FLUSH: the old ``serve_reads``, an unconditional ``SET serving PX ttl``:
    ``renew_unchecked`` for a renewal (no ``XX``), ``sync_unmarked`` for the first lease
    after a full sync (no marker script; and the old full sync, without a marker)."""

    renew_unchecked = True
    sync_unmarked = True

    def serve_reads(self, ttl_s: float, *, renew: bool) -> bool:
        if not (self.renew_unchecked if renew else self.sync_unmarked):
            return super().serve_reads(ttl_s, renew=renew)
        self.call(lambda: self.server.set_lease(ttl_s, "set", self.name))
        return True

    def begin_full_sync(self) -> SimFullSync:
        return UnmarkedFullSync(self) if self.sync_unmarked else super().begin_full_sync()
