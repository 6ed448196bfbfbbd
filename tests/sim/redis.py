"""An in-memory Redis with the semantics of ``ledgerd.cache.redis``'s scripts, and faults.

Server side (``SimRedis``): one hash per account, written by the last-write-wins
script (a version only ever replaces a lower one; only ``create`` writes add a
missing entry); the serving lease (a key with an expiry: renewed with ``SET ...
XX``, only while it exists; the first lease after a full sync granted by a script
only while the sync's marker exists, which it deletes); the full-sync marker (set
when a sync begins, checked by ``complete``); the read script, which answers only
while it is loaded (never after a restart: Redis does not persist scripts) and
the lease key exists. Faults: a restart (down for a while, then an older RDB
snapshot, keys with an expiry included unless it passed; no script), a stall
(commands queue and run, in arrival order, when it ends), a full Redis (every
write refused, reads served), a FLUSHDB (every key goes, lease and marker
included; scripts stay), and eviction of one key *with an expiry* (a negative
entry, the lease, the marker): the only keys ``noeviction``/``volatile-*`` can
drop, and ``allkeys-*`` gets no lease. A single-key DEL of a real balance is
unsupported (``ledgerd.cache.redis``) and not modelled.

Client side (``SimRedisClient``, one per process): a ``BalanceCache`` whose
commands travel over the process's own link (down: unreachable from this
process only; slow: delivered late). A command that outlives the client's
timeout fails with ``CacheUnavailable`` but may still run on the server later,
or be dropped with the connection, as with a real socket. Reads skip Redis for a
second after a failure (the breaker); writes do not (``RedisCache.put_many``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from random import Random
from typing import Any

from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable
from sim.kernel import Event, Sim

NEGATIVE_ENTRY_TTL_S = 600.0
FULL_SYNC_MARKER_TTL_S = 3600.0  # ``ledgerd.cache.redis._FULL_SYNC_MARKER_TTL_S``
_NOSCRIPT = object()
_OOM = "OOM command not allowed when used memory > 'maxmemory'"


@dataclass(frozen=True)
class Snapshot:
    """An RDB file: every key, each with its absolute expiry (as Redis stores it)."""

    data: dict[Account, tuple[Balance, float | None]]
    lease_until: float | None
    marker_until: float | None


@dataclass
class SimRedis:
    """The server: data, lease, script cache, faults."""

    sim: Sim
    rng: Random
    data: dict[Account, tuple[Balance, float | None]] = field(default_factory=dict)
    lease_until: float | None = None
    marker_until: float | None = None  # the full-sync marker key
    script_loaded: bool = False
    instance: int = 1
    down_until: float = 0.0
    stalled_until: float = 0.0
    full_until: float = 0.0
    snapshots: list[Snapshot] = field(default_factory=list)
    note: Callable[[str], None] = lambda line: None  # the run's trace

    # -- commands (run at one instant, on the scheduler) -------------------------------
    def _entry(self, account: Account) -> Balance | None:
        found = self.data.get(account)
        if found is None:
            return None
        balance, expires_at = found
        if expires_at is not None and expires_at <= self.sim.now:
            del self.data[account]
            return None
        return balance

    def _alive(self, until: float | None) -> bool:
        return until is not None and until > self.sim.now

    def read(self, account: Account) -> object:
        """The read script by SHA: NOSCRIPT, None (no lease, or absent), or the balance."""
        if not self.script_loaded:
            return _NOSCRIPT
        if not self._alive(self.lease_until):
            return None
        return self._entry(account)

    def write(self, balances: Iterable[Balance], create: bool, writer: str = "") -> int:
        if self.full_until > self.sim.now:
            raise CacheUnavailable(_OOM)
        written = 0
        for balance in balances:
            current = self._entry(balance.account)
            if current is not None:
                if current.version >= balance.version:
                    continue
            elif not create:
                continue
            if current is None:
                self.note(
                    f"redis: {writer} creates {balance.user_id}:{balance.currency}"
                    f" v{balance.version} (lease until {self.lease_until})"
                )
            expires = self.sim.now + NEGATIVE_ENTRY_TTL_S if balance.version == 0 else None
            self.data[balance.account] = (balance, expires)
            written += 1
        return written

    def set_lease(self, ttl_s: float, mode: str, writer: str = "") -> bool:
        """``RedisCache.serve_reads``: ``mode`` "xx" renews (``SET PX XX``: only a lease that
        still exists), "first" is the first lease after a full sync (the script: only while
        the sync's marker exists, which it deletes), "set" the old unconditional ``SET``."""
        if ttl_s <= 0:
            self.lease_until = None
            return False
        if self.full_until > self.sim.now:
            raise CacheUnavailable(_OOM)
        if mode == "xx" and not self._alive(self.lease_until):
            self.note(f"redis: {writer} lease renewal refused (XX: no lease)")
            return False
        if mode == "first":
            if not self._alive(self.marker_until):
                self.note(f"redis: {writer} first lease refused (no full-sync marker)")
                return False
            self.marker_until = None
        if not self._alive(self.lease_until):
            self.note(f"redis: {writer} lease granted ({mode}) until {self.sim.now + ttl_s:.6f}")
        self.lease_until = self.sim.now + ttl_s
        return True

    def begin_full_sync(self) -> int:
        """The sync's first command on its pinned connection: ``SET marker EX``."""
        if self.full_until > self.sim.now:
            raise CacheUnavailable(_OOM)
        self.marker_until = self.sim.now + FULL_SYNC_MARKER_TTL_S
        return self.instance

    def marker_exists(self) -> bool:
        return self._alive(self.marker_until)

    # -- faults -------------------------------------------------------------------------
    def snapshot(self) -> None:
        self.snapshots.append(Snapshot(dict(self.data), self.lease_until, self.marker_until))
        del self.snapshots[:-8]

    def restart(self, down_s: float) -> None:
        """Crash now; come back after ``down_s`` from an older snapshot (or empty). Keys
        whose expiry passed by then are not loaded; the others (a lease, a marker) are."""
        self.instance += 1
        self.down_until = self.sim.now + down_s
        self.script_loaded = False
        self.stalled_until = 0.0
        if self.snapshots and self.rng.random() < 0.8:
            chosen = self.rng.choice(self.snapshots)
            self.data = dict(chosen.data)
            self.lease_until, self.marker_until = chosen.lease_until, chosen.marker_until
        else:
            self.data, self.lease_until, self.marker_until = {}, None, None

    def flush(self) -> None:
        """FLUSHDB (or every key of the prefix deleted): balances, lease and marker go;
        loaded scripts stay."""
        self.data, self.lease_until, self.marker_until = {}, None, None

    def evict(self) -> str | None:
        """Evict one key that has an expiry (a negative entry, the lease, the marker), as
        ``noeviction``/``volatile-*`` may; which one, or None when there is none."""
        now = self.sim.now
        keys: list[str | Account] = [
            account
            for account, (_, expires_at) in self.data.items()
            if expires_at is not None and expires_at > now
        ]
        if self._alive(self.lease_until):
            keys.append("lease")
        if self._alive(self.marker_until):
            keys.append("marker")
        if not keys:
            return None
        victim = self.rng.choice(keys)
        if victim == "lease":
            self.lease_until = None
        elif victim == "marker":
            self.marker_until = None
        else:
            assert isinstance(victim, Account)
            del self.data[victim]
            return f"{victim.user_id}:{victim.currency} (negative)"
        return str(victim)

    def submit(self, run: Callable[[], None], fail: Callable[[str], None], sent_to: int) -> None:
        """A command arrives: run it now, after the stall, or fail it (connection lost)."""
        now = self.sim.now
        if now < self.down_until or (sent_to and sent_to != self.instance):
            fail("connection reset by peer")
            return
        if now < self.stalled_until:
            self.sim.call_at(self.stalled_until, lambda: self.submit(run, fail, sent_to))
            return
        run()


@dataclass
class Link:
    """A process's network path to Redis."""

    down_until: float = 0.0
    slow_until: float = 0.0
    slow_s: float = 0.0


class SimRedisClient:
    """BalanceCache for one process (``RedisCache``'s behaviour on ``SimRedis``)."""

    timeout_s = 0.5
    breaker_s = 1.0

    def __init__(self, server: SimRedis, rng: Random, name: str) -> None:
        self.server = server
        self.sim = server.sim
        self.rng = rng
        self.name = name
        self.link = Link()
        self._down_until = 0.0
        self.note: Callable[[str], None] = lambda line: None  # the run's trace

    # -- the wire -----------------------------------------------------------------------
    def _latency(self) -> float:
        delay = self.rng.uniform(0.0001, 0.001)
        if self.rng.random() < 0.01:  # a lost packet, retransmitted
            delay += self.rng.uniform(0.01, 0.3)
        if self.sim.now < self.link.slow_until:
            delay += self.rng.uniform(0.0, self.link.slow_s)
        return delay

    def call(
        self, command: Callable[[], Any], *, timeout_s: float | None = None, pinned: int = 0
    ) -> Any:
        """Send ``command``; its result, or CacheUnavailable (timeout, refused, reset).

        ``pinned``: an instance this connection was opened to (no reconnecting to another).
        """
        sim, server = self.sim, self.server
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if sim.now < self.link.down_until:
            sim.sleep(timeout)
            raise CacheUnavailable(f"redis ({self.name}): connect timed out")
        if sim.now < server.down_until:
            sim.sleep(self._latency())
            raise CacheUnavailable(f"redis ({self.name}): connection refused")
        # A pooled connection retries once on a fresh one: it reaches whatever runs now.
        sent_to = pinned
        reply = Event(sim)
        box: dict[str, Any] = {}
        back = self._latency()

        def done() -> None:
            sim.call_at(sim.now + back, reply.set)

        def run() -> None:
            if box.get("dropped"):
                return
            try:
                box["result"] = command()
            except CacheUnavailable as exc:
                box["error"] = exc
            done()

        def fail(why: str) -> None:
            box["error"] = CacheUnavailable(f"redis ({self.name}): {why}")
            done()

        sim.call_at(sim.now + self._latency(), lambda: server.submit(run, fail, sent_to))
        if not sim.wait_event(reply, timeout):
            if "result" not in box and "error" not in box and self.rng.random() < 0.5:
                box["dropped"] = True  # the closed connection took the command with it
            raise CacheUnavailable(f"redis ({self.name}): timed out")
        if "error" in box:
            raise box["error"]
        return box["result"]

    # -- reads --------------------------------------------------------------------------
    def check_breaker(self) -> None:
        if self.sim.now < self._down_until:
            raise CacheUnavailable("redis: recently unreachable, not trying again yet")

    def open_breaker(self) -> None:
        self._down_until = self.sim.now + self.breaker_s

    def read(self, account: Account) -> Balance | None:
        """What ``RedisBalanceReader.get`` answers (None: NOSCRIPT, no lease, absent).

        Raises:
            CacheUnavailable.
        """
        self.check_breaker()
        try:
            reply = self.call(lambda: self.server.read(account))
        except CacheUnavailable:
            self.open_breaker()
            raise
        return None if reply is _NOSCRIPT else reply

    def get(self, account: Account) -> Balance | None:
        return self.read(account)

    def reader(self) -> object:
        return _UnusedReader()

    # -- writes -------------------------------------------------------------------------
    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
        newest: dict[Account, Balance] = {}
        for balance in balances:
            queued = newest.get(balance.account)
            if queued is None or queued.version < balance.version:
                newest[balance.account] = balance
        if newest:
            self.write(list(newest.values()), create=create)

    def write(self, balances: list[Balance], *, create: bool) -> None:
        """One script call; trips the read breaker on failure."""
        try:
            self.call(lambda: self.server.write(balances, create, self.name))
        except CacheUnavailable as exc:
            self.note(f"{self.name} write {_versions(balances)} failed: {exc}")
            self.open_breaker()
            raise

    def serve_reads(self, ttl_s: float, *, renew: bool) -> bool:
        mode = "xx" if renew else "first"
        return bool(self.call(lambda: self.server.set_lease(ttl_s, mode, self.name)))

    def eviction_risk(self) -> str | None:
        self.call(lambda: None)
        return None

    def ready(self) -> bool:
        return bool(self.call(lambda: self.server.script_loaded))

    def begin_full_sync(self) -> SimFullSync:
        return SimFullSync(self)

    def ping(self) -> None:
        self.call(lambda: None)

    def close(self) -> None:
        return None


class SimFullSync:
    """``RedisFullSync``: one connection pinned to the instance it opened on, no retries."""

    timeout_s = 5.0

    check_marker = True

    def __init__(self, client: SimRedisClient) -> None:
        self._client = client
        # The marker is the first command: it opens (and pins) the connection.
        self._instance = client.call(client.server.begin_full_sync)

    def put_many(self, balances: Iterable[Balance]) -> None:
        batch = list(balances)
        server = self._client.server
        self._client.call(
            lambda: server.write(batch, True, f"{self._client.name} full sync"),
            timeout_s=self.timeout_s,
            pinned=self._instance,
        )

    def complete(self) -> None:
        server = self._client.server

        def load() -> None:
            server.script_loaded = True

        call = self._client.call
        if self.check_marker and not call(
            server.marker_exists, timeout_s=self.timeout_s, pinned=self._instance
        ):
            self._client.note(f"{self._client.name} full sync: marker gone, not complete")
            raise CacheUnavailable("redis full sync: keys lost during the sync (flushed?)")
        call(load, timeout_s=self.timeout_s, pinned=self._instance)

    def close(self) -> None:
        return None


class _UnusedReader:
    """The simulation reads through ``SimRedisClient.read`` (on the fake clock)."""

    async def get(self, account: Account) -> Balance | None:
        raise AssertionError("not used by the simulation")

    async def close(self) -> None:
        return None


def _versions(balances: Iterable[Balance]) -> str:
    return ",".join(f"{b.user_id}:{b.currency} v{b.version}" for b in balances)
