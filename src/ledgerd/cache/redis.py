"""The Redis balance cache: one hash per account, readable only once a full sync vouched for it.

Writes go through a last-write-wins script that compares versions inside
Redis, so updates from several processes, retries and full syncs can arrive
in any order and the newest version still wins.

Reads never go back in time (docs/architecture.md §1), even though a Redis restart
brings back an RDB snapshot older than versions already answered. Reads run
the *read script* by its SHA only (EVALSHA, never EVAL); only a full sync
loads it (SCRIPT LOAD), as its last step. Redis never persists its script
cache, so after any restart every read gets NOSCRIPT, which this module
treats as a miss: the service reads the store until the leader's full sync
has rewritten every balance and loaded the script again. The script's text
names the key prefix, so each deployment sharing a Redis has its own SHA.
The full sync runs on one dedicated connection with retries off, so a restart
in the middle breaks that connection and fails the sync instead of letting
its SCRIPT LOAD reach a new, stale instance.

Why this rather than a readiness key holding INFO's ``run_id``: the
script costs nothing per read (the same one round trip as HMGET, measured in
the cache contract suite's notes), needs no per-connection state, and
also covers a replica promoted by failover (scripts do not replicate).

Limits: a write that fails only for its writer (a network partition between
one process and a Redis that stays up for others) is lost until that process
reaches Redis again (it replays its unwritten balances before its next read
or write), the feed updater writes it, or the next full sync. FLUSHALL,
eviction or a deleted key only make reads miss, which is always safe.
Timeouts are short, and after a failure Redis is skipped for a second: a
slow or dead Redis must not slow reads (they fall back to the store).

The API reads through ``RedisBalanceReader`` (``RedisCache.reader``): the same
read script by SHA, over one pipelined connection on the event loop
(``ledgerd.cache.pipelined``), sharing this cache's breaker and its unwritten
balances. Writes stay synchronous (callers run them on threads).

Negative entries (version 0, an account with no stored balance) expire after
``NEGATIVE_ENTRY_TTL_S``, so reads of accounts that never appear cannot fill
Redis; the first real balance written over one removes the expiry.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterable

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from ledgerd import metrics
from ledgerd.cache.pipelined import PipelinedRedis, pack_arg, pack_head
from ledgerd.constants import DEFAULT_REDIS_PREFIX, REDIS_BALANCE_KEY
from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable

NEGATIVE_ENTRY_TTL_S = 3600
# KEYS = account hashes; ARGV = available, frozen, version for each key in turn.
# One call writes a whole batch: per-key round trips cost more than the writes.
# A version-0 entry (negative) expires; a real balance replacing one does not.
_LAST_WRITE_WINS = """
local written = 0
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local version = tonumber(ARGV[base + 3])
  local current = redis.call('HGET', key, 'version')
  if (not current) or tonumber(current) < version then
    redis.call('HSET', key, 'available', ARGV[base + 1], 'frozen', ARGV[base + 2],
               'version', ARGV[base + 3])
    if version == 0 then
      redis.call('EXPIRE', key, NEGATIVE_ENTRY_TTL_S)
    elseif current == '0' then
      redis.call('PERSIST', key)
    end
    written = written + 1
  end
end
return written
""".replace("NEGATIVE_ENTRY_TTL_S", str(NEGATIVE_ENTRY_TTL_S))
# The first line makes the SHA differ per deployment (see the module docstring).
_READ = """-- ledgerd balance read, key prefix {prefix}
return redis.call('HMGET', KEYS[1], 'available', 'frozen', 'version')
"""
# Keys per script call: large enough to amortise, small enough not to stall Redis.
_KEYS_PER_CALL = 500
# Balances a process keeps to replay after failed writes; beyond it the full sync repairs.
_MAX_UNWRITTEN = 100_000


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class RedisCache:
    """BalanceCache on Redis, shared by every ledgerd process."""

    def __init__(
        self, url: str, prefix: str = DEFAULT_REDIS_PREFIX, timeout_s: float = 0.5
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._balance_prefix = prefix + REDIS_BALANCE_KEY
        # One retry on a fresh connection: a restart leaves dead sockets in the pool.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=True,
            retry=Retry(NoBackoff(), 1),
        )
        self._write_script = self._client.register_script(_LAST_WRITE_WINS)
        # Newlines in a prefix would end the Lua comment.
        self._read_text = _READ.format(prefix=prefix.replace("\n", " ").replace("\r", " "))
        self._read_sha = _sha1(self._read_text)
        # After a failure, callers skip Redis for a moment instead of each waiting a timeout.
        self._retry_after_s = 1.0
        self._down_until = 0.0
        # Balances whose write failed: written before this process reads or writes again.
        self._unwritten: dict[Account, Balance] = {}
        self._unwritten_lock = threading.Lock()

    def balance_key(self, account: Account) -> str:
        return f"{self._balance_prefix}{account.user_id}:{account.currency}"

    def _check_breaker(self) -> None:
        if time.monotonic() < self._down_until:
            raise CacheUnavailable("redis: recently unreachable, not trying again yet")

    def _trip(self, exc: RedisError) -> CacheUnavailable:
        self._open_breaker()
        return CacheUnavailable(f"redis: {exc}")

    def _open_breaker(self) -> None:
        self._down_until = time.monotonic() + self._retry_after_s

    def reader(self) -> RedisBalanceReader:
        """A reader for the running event loop, on a pipelined connection of its own."""
        return RedisBalanceReader(self, PipelinedRedis(self._url, timeout_s=self._timeout_s))

    @property
    def has_unwritten(self) -> bool:
        """Whether balances whose write failed wait to be replayed (before any read)."""
        return bool(self._unwritten)

    # -- reads ----------------------------------------------------------------
    def get(self, account: Account) -> Balance | None:
        """The cached balance; None when absent or while no full sync vouches for the cache.

        Raises:
            CacheUnavailable: Redis cannot be reached (or earlier writes cannot be replayed).
        """
        self._check_breaker()
        if self._unwritten:
            self.put_many(())
        try:
            available, frozen, version = self._client.evalsha(
                self._read_sha, 1, self.balance_key(account)
            )
        except NoScriptError:
            metrics.CACHE_NOT_READY_READS.inc()
            return None
        except RedisError as exc:
            raise self._trip(exc) from exc
        return _balance(account, available, frozen, version)

    def ready(self) -> bool:
        """Whether a full sync has vouched for this Redis instance since it started.

        Raises:
            CacheUnavailable: Redis cannot be reached.
        """
        try:
            return bool(self._client.script_exists(self._read_sha)[0])
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    # -- writes ---------------------------------------------------------------
    def put_many(self, balances: Iterable[Balance]) -> None:
        """Write balances newer than the cached ones (also any earlier failed writes).

        Raises:
            CacheUnavailable: Redis cannot be reached; the balances are kept to replay.
        """
        with self._unwritten_lock:
            batch, self._unwritten = self._unwritten, {}
        for balance in balances:
            queued = batch.get(balance.account)
            if queued is None or queued.version < balance.version:
                batch[balance.account] = balance
        if not batch:
            return
        try:
            self._check_breaker()
            try:
                _write(self._write_script, self.balance_key, batch.values())
            except RedisError as exc:
                raise self._trip(exc) from exc
        except CacheUnavailable:
            self._keep_unwritten(batch)
            raise

    def _keep_unwritten(self, batch: dict[Account, Balance]) -> None:
        with self._unwritten_lock:
            for account, balance in batch.items():
                newer = self._unwritten.get(account)
                if newer is None or newer.version < balance.version:
                    self._unwritten[account] = balance
            while len(self._unwritten) > _MAX_UNWRITTEN:
                # Bounded memory: the oldest entries are left to the full sync.
                del self._unwritten[next(iter(self._unwritten))]

    def begin_full_sync(self) -> RedisFullSync:
        """A full sync on its own connection; the caller must open it before reading the store.

        Raises:
            CacheUnavailable: Redis cannot be reached.
        """
        return RedisFullSync(
            self._url, self._timeout_s, self.balance_key, self._read_text, self._read_sha
        )

    def ping(self) -> None:
        try:
            self._client.ping()
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    def close(self) -> None:
        self._client.close()


class RedisBalanceReader:
    """AsyncBalanceReader: the read script by SHA over one pipelined connection.

    Concurrent reads leave together (those of one loop turn, or issued while the
    previous write is out), and each is sent only after its caller asked, so a
    reply is never older than its read (a read never joins a write already sent).
    """

    def __init__(self, cache: RedisCache, connection: PipelinedRedis) -> None:
        self._cache = cache
        self._connection = connection
        # EVALSHA <sha> 1 <key>: packed once but for the key.
        self._command_head = pack_head(4, "EVALSHA", cache._read_sha, 1)

    async def get(self, account: Account) -> Balance | None:
        """The cached balance; None when absent or while no full sync vouches for the cache.

        Raises:
            CacheUnavailable: Redis cannot be reached (or earlier writes cannot be replayed).
        """
        cache = self._cache
        cache._check_breaker()
        if cache.has_unwritten:
            # Replay first: this process may have answered a version Redis lacks.
            await asyncio.to_thread(cache.put_many, ())
        key = cache.balance_key(account).encode()
        try:
            reply = await self._connection.execute(self._command_head + pack_arg(key))
        except CacheUnavailable:
            cache._open_breaker()
            raise
        if isinstance(reply, hiredis.ReplyError):
            if str(reply).startswith("NOSCRIPT"):
                metrics.CACHE_NOT_READY_READS.inc()
                return None
            raise CacheUnavailable(f"redis: {reply}")
        available, frozen, version = reply
        return _balance(account, available, frozen, version)

    async def close(self) -> None:
        await self._connection.close()


def _balance(
    account: Account, available: object, frozen: object, version: object
) -> Balance | None:
    """The balance a read script reply holds; None when the hash lacks a field."""
    if version is None or available is None or frozen is None:
        return None
    return Balance(
        account.user_id,
        account.currency,
        parse_decimal(str(available)),
        parse_decimal(str(frozen)),
        int(str(version)),
    )


class RedisFullSync:
    """One full sync: every write and the final SCRIPT LOAD go over one connection.

    A restart breaks that connection; with retries off, the next command fails
    instead of reconnecting, so the read script is only ever loaded into the
    instance that received every balance of this sync.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float,
        key_of: Callable[[Account], str],
        read_text: str,
        read_sha: str,
    ) -> None:
        self._key_of = key_of
        self._read_text, self._read_sha = read_text, read_sha
        try:
            # A single-connection client connects here, and pins the instance before the
            # caller reads the store.
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=max(timeout_s, 5.0),  # large batches
                socket_connect_timeout=timeout_s,
                decode_responses=True,
                single_connection_client=True,
                retry=Retry(NoBackoff(), 0),
            )
        except RedisError as exc:
            raise CacheUnavailable(f"redis full sync: {exc}") from exc
        self._script = self._client.register_script(_LAST_WRITE_WINS)

    def put_many(self, balances: Iterable[Balance]) -> None:
        """Raises: CacheUnavailable: the connection failed; abandon this sync."""
        try:
            _write(self._script, self._key_of, balances)
        except RedisError as exc:
            raise CacheUnavailable(f"redis full sync: {exc}") from exc

    def complete(self) -> None:
        """Vouch for the cache: readers are served from it again.

        Raises:
            CacheUnavailable: the connection failed; the cache stays unready.
        """
        try:
            sha = self._client.script_load(self._read_text)
        except RedisError as exc:
            raise CacheUnavailable(f"redis full sync: {exc}") from exc
        if sha != self._read_sha:
            raise CacheUnavailable(f"redis full sync: read script loaded as {sha}")

    def close(self) -> None:
        self._client.close()


def _write(script: Script, key_of: Callable[[Account], str], balances: Iterable[Balance]) -> None:
    """Write balances in script calls of _KEYS_PER_CALL keys (raises RedisError)."""
    batch = list(balances)
    for start in range(0, len(batch), _KEYS_PER_CALL):
        chunk = batch[start : start + _KEYS_PER_CALL]
        args: list[str | int] = []
        for balance in chunk:
            args += [
                format_amount(balance.available),
                format_amount(balance.frozen),
                balance.version,
            ]
        script(keys=[key_of(b.account) for b in chunk], args=args)
