"""An in-memory Redis with the semantics of ``ledgerd.cache.redis``'s scripts, and faults.

Server side (``SimRedis``): one hash per account, written by the last-write-wins
script (a version only ever replaces a lower one; only ``create`` writes add a
missing entry); the serving lease (a key with an expiry); the read script, which
answers only while it is loaded (never after a restart: Redis does not persist
scripts) and the lease key exists. Faults: a restart (down for a while, then an
older RDB snapshot, no script, no lease), a stall (commands queue and run, in
arrival order, when it ends), a full Redis (every write refused, reads served),
DEL or eviction of one key.

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
_NOSCRIPT = object()


@dataclass
class SimRedis:
    """The server: data, lease, script cache, faults."""

    sim: Sim
    rng: Random
    data: dict[Account, tuple[Balance, float | None]] = field(default_factory=dict)
    lease_until: float | None = None
    script_loaded: bool = False
    instance: int = 1
    down_until: float = 0.0
    stalled_until: float = 0.0
    full_until: float = 0.0
    snapshots: list[dict[Account, tuple[Balance, float | None]]] = field(default_factory=list)
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

    def read(self, account: Account) -> object:
        """The read script by SHA: NOSCRIPT, None (no lease, or absent), or the balance."""
        if not self.script_loaded:
            return _NOSCRIPT
        if self.lease_until is None or self.lease_until <= self.sim.now:
            return None
        return self._entry(account)

    def write(self, balances: Iterable[Balance], create: bool, writer: str = "") -> int:
        if self.full_until > self.sim.now:
            raise CacheUnavailable("OOM command not allowed when used memory > 'maxmemory'")
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

    def set_lease(self, ttl_s: float) -> None:
        if ttl_s <= 0:
            self.lease_until = None
            return
        if self.full_until > self.sim.now:
            raise CacheUnavailable("OOM command not allowed when used memory > 'maxmemory'")
        self.lease_until = self.sim.now + ttl_s

    # -- faults -------------------------------------------------------------------------
    def snapshot(self) -> None:
        self.snapshots.append(dict(self.data))
        del self.snapshots[:-8]

    def restart(self, down_s: float) -> None:
        """Crash now; come back after ``down_s`` from an older snapshot (or empty)."""
        self.instance += 1
        self.down_until = self.sim.now + down_s
        self.script_loaded = False
        self.lease_until = None
        self.stalled_until = 0.0
        if self.snapshots and self.rng.random() < 0.8:
            self.data = dict(self.rng.choice(self.snapshots))
        else:
            self.data = {}

    def delete(self, account: Account) -> None:
        self.data.pop(account, None)

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

    def serve_reads(self, ttl_s: float) -> None:
        self.call(lambda: self.server.set_lease(ttl_s))

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

    def __init__(self, client: SimRedisClient) -> None:
        self._client = client
        self._instance = client.call(lambda: client.server.instance)

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

        self._client.call(load, timeout_s=self.timeout_s, pinned=self._instance)

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
