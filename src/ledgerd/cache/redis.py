"""The Redis balance cache: one hash per account, readable only under a lease.

Writes go through a last-write-wins script that compares versions inside
Redis, so updates from several processes, retries and full syncs can arrive
in any order and the newest version still wins. A write that may carry an old
version (``create=False``) only raises an entry Redis holds.

Reads never go back in time (docs/architecture.md §1). Reads run the *read
script* by its SHA only (EVALSHA, never EVAL), and the script answers only
while the *serving lease* key exists:

* Redis never persists its script cache, so after any restart (which may bring
  back an RDB snapshot older than versions already answered) every read gets
  NOSCRIPT until the leader's full sync has rewritten every balance and loaded
  the script again (SCRIPT LOAD, its last step). The full sync runs on one
  dedicated connection with retries off, so a restart in the middle breaks that
  connection and fails the sync instead of letting its SCRIPT LOAD reach a new,
  stale instance. This also covers a replica promoted by failover.
* The lease (``ledgerd.cache.fence``) ends when an answer could not be written
  here: the process that answered raised the fence in the store and waited the
  lease out, and the leader grants no new one before a full sync repairs. A
  lease that vanished before its time (FLUSHDB, FLUSHALL) is not renewed either:
  a write-back delayed in flight may have created an older entry in the empty
  Redis, so a full sync comes first. Deleting single balance keys by hand is not
  supported (nothing can tell such a DEL apart); drop the whole prefix, lease
  key included, or FLUSHDB.

The script's text names the key prefix, so each deployment sharing a Redis has
its own SHA. Both checks run inside the script: a hit stays one round trip.

An eviction policy that can drop real balances (``allkeys-*``) gets no lease
(``eviction_risk``): real balances carry no expiry, so ``noeviction`` and the
``volatile-*`` policies only ever drop negative entries and the lease.
Timeouts are short, and after a failure reads skip Redis for a second: a slow
or dead Redis must not slow reads (they fall back to the store).

The API reads through ``RedisBalanceReader`` (``RedisCache.reader``): the same
read script by SHA, over one pipelined connection on the event loop
(``ledgerd.cache.pipelined``), sharing this cache's breaker. Writes stay
synchronous (callers run them on threads).

Negative entries (version 0, an account with no stored balance) expire after
``NEGATIVE_ENTRY_TTL_S``, and at most ``negative_entries_max`` are created per
such period (a counter in Redis), so reads of accounts that never appear cannot
fill Redis; the first real balance written over one removes the expiry.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from ledgerd import metrics
from ledgerd.cache.pipelined import PipelinedRedis, Reply, pack_arg
from ledgerd.constants import (
    DEFAULT_REDIS_PREFIX,
    REDIS_ABSENT_COUNT_KEY,
    REDIS_BALANCE_KEY,
    REDIS_FULL_SYNC_KEY,
    REDIS_SERVING_KEY,
)
from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable
from ledgerd.log.codec import FeedRow

NEGATIVE_ENTRY_TTL_S = 600
# KEYS[1] = the negative-entry counter, then the account hashes; ARGV[1] = '1' to create
# entries Redis lacks, ARGV[2] = negative entries allowed per NEGATIVE_ENTRY_TTL_S, then
# available, frozen, version, lock for each account in turn. One call writes a whole batch:
# per-key round trips cost more than the writes.
_LAST_WRITE_WINS = """
local create = ARGV[1] == '1'
local written = 0
for i = 2, #KEYS do
  local key = KEYS[i]
  local base = (i - 2) * 4 + 2
  local version = tonumber(ARGV[base + 3])
  local current = redis.call('HGET', key, 'version')
  local write = false
  if current then
    write = tonumber(current) < version
  elseif create then
    if version > 0 then
      write = true
    else
      local made = redis.call('INCR', KEYS[1])
      if made == 1 then
        redis.call('EXPIRE', KEYS[1], NEGATIVE_ENTRY_TTL_S)
      end
      write = made <= tonumber(ARGV[2])
    end
  end
  if write then
    redis.call('HSET', key, 'available', ARGV[base + 1], 'frozen', ARGV[base + 2],
               'version', ARGV[base + 3], 'lock', ARGV[base + 4])
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
# KEYS[1] = the serving lease, then the accounts. The first line makes the SHA differ per
# deployment (see the module docstring). 0: not serving; else each account's fields in turn.
# One call reads every account of a pipelined write: Redis's cost follows commands, and the
# lease is checked once for all of them, atomically with their reads.
_READ = """-- ledgerd balance read, key prefix {prefix}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local found = {{}}
for i = 2, #KEYS do
  found[i - 1] = redis.call('HMGET', KEYS[i], 'available', 'frozen', 'version', 'lock')
end
return found
"""
# KEYS[1] = the full-sync marker, KEYS[2] = the serving lease; ARGV[1] = its milliseconds.
# The first lease after a full sync: only if no FLUSHDB took the marker during the sync.
_FIRST_LEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""
# Keys per script call: large enough to amortise, small enough not to stall Redis.
_KEYS_PER_CALL = 500
# A full sync's marker outlives any sync, not an abandoned one for ever.
_FULL_SYNC_MARKER_TTL_S = 3600
# Eviction policies that may drop keys without an expiry, i.e. real balances.
_UNSAFE_POLICY_PREFIX = "allkeys-"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class RedisCache:
    """BalanceCache on Redis, shared by every ledgerd process."""

    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_REDIS_PREFIX,
        timeout_s: float = 0.5,
        *,
        negative_entries_max: int = 50_000,
        read_write_gap_s: float = 0.0,
    ) -> None:
        self._url = url
        self._read_write_gap_s = read_write_gap_s
        self._timeout_s = timeout_s
        self._balance_prefix = prefix + REDIS_BALANCE_KEY
        self._serving_key = prefix + REDIS_SERVING_KEY
        self._full_sync_key = prefix + REDIS_FULL_SYNC_KEY
        self._absent_count_key = prefix + REDIS_ABSENT_COUNT_KEY
        self._negative_entries_max = negative_entries_max
        # One retry on a fresh connection: a restart leaves dead sockets in the pool.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=True,
            retry=Retry(NoBackoff(), 1),
        )
        self._write_script = self._client.register_script(_LAST_WRITE_WINS)
        self._first_lease_script = self._client.register_script(_FIRST_LEASE)
        # Newlines in a prefix would end the Lua comment.
        self._read_text = _READ.format(prefix=prefix.replace("\n", " ").replace("\r", " "))
        self._read_sha = _sha1(self._read_text)
        # After a failure, reads skip Redis for a moment instead of each waiting a timeout.
        self._retry_after_s = 1.0
        self._down_until = 0.0

    def balance_key(self, account: Account) -> str:
        return f"{self._balance_prefix}{account.user_id}:{account.currency}"

    @property
    def serving_key(self) -> str:
        return self._serving_key

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
        return RedisBalanceReader(
            self,
            PipelinedRedis(
                self._url, timeout_s=self._timeout_s, write_gap_s=self._read_write_gap_s
            ),
        )

    # -- reads ----------------------------------------------------------------
    def get(self, account: Account) -> Balance | None:
        """The cached balance; None when absent or while Redis holds no serving lease.

        Raises:
            CacheUnavailable: Redis cannot be reached.
        """
        self._check_breaker()
        try:
            reply = self._client.evalsha(
                self._read_sha, 2, self._serving_key, self.balance_key(account)
            )
        except NoScriptError:
            metrics.CACHE_NOT_READY_READS.inc()
            return None
        except RedisError as exc:
            raise self._trip(exc) from exc
        if not isinstance(reply, list):  # 0: no serving lease
            metrics.CACHE_NOT_READY_READS.inc()
            return None
        return _reply_balance(account, reply[0])

    def ready(self) -> bool:
        """Whether a full sync has vouched for this Redis instance since it started.

        Raises:
            CacheUnavailable: Redis cannot be reached.
        """
        try:
            return bool(self._client.script_exists(self._read_sha)[0])
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    def eviction_risk(self) -> str | None:
        """Raises: CacheUnavailable: Redis cannot be reached."""
        try:
            policy = str(self._client.info("memory").get("maxmemory_policy", ""))
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc
        if policy.startswith(_UNSAFE_POLICY_PREFIX):
            return f"maxmemory-policy {policy} may evict balances (use noeviction or volatile-*)"
        return None

    # -- writes ---------------------------------------------------------------
    def put_many(self, balances: Iterable[Balance], *, create: bool = False) -> None:
        """Raise cached balances to newer versions; with ``create``, add missing ones.

        Not behind the read breaker: a write runs on a thread, and an answer that cannot
        write raises the read fence, which costs far more than a timeout.

        Raises:
            CacheUnavailable: Redis cannot be reached or refused the write (full).
        """
        newest: dict[Account, Balance] = {}
        for balance in balances:
            queued = newest.get(balance.account)
            if queued is None or queued.version < balance.version:
                newest[balance.account] = balance
        if not newest:
            return
        try:
            _write(
                self._write_script,
                self._absent_count_key,
                self.balance_key,
                newest.values(),
                create=create,
                negative_entries_max=self._negative_entries_max,
            )
        except RedisError as exc:
            raise self._trip(exc) from exc

    def put_feed_rows(self, rows: Sequence[FeedRow]) -> None:
        """``put_many`` (without ``create``) of the cache feed's rows, one per account, as
        decoded (``decode_balance_rows``): their text goes to Redis as it is.

        Raises:
            CacheUnavailable: Redis cannot be reached or refused the write (full).
        """
        script, prefix = self._write_script, self._balance_prefix
        try:
            for start in range(0, len(rows), _KEYS_PER_CALL):
                keys: list[str] = [self._absent_count_key]
                args: list[str | int] = ["0", self._negative_entries_max]
                key, arg = keys.append, args.extend
                # One pass over the rows: a key and the four values of each.
                for user_id, currency, available, frozen, version, lock in rows[
                    start : start + _KEYS_PER_CALL
                ]:
                    key(f"{prefix}{user_id}:{currency}")
                    arg((available, frozen, version, lock))
                script(keys=keys, args=args)
        except RedisError as exc:
            raise self._trip(exc) from exc

    def serve_reads(self, ttl_s: float, *, renew: bool) -> bool:
        """Raises: CacheUnavailable: Redis cannot be reached (or is full)."""
        ttl_ms = int(ttl_s * 1000)
        try:
            if ttl_ms <= 0:
                self._client.delete(self._serving_key)
                return False
            if renew:
                # XX: a lease that vanished (ran out, FLUSHDB) is granted again only after a
                # full sync.
                return bool(self._client.set(self._serving_key, "1", px=ttl_ms, xx=True))
            keys = [self._full_sync_key, self._serving_key]
            return bool(self._first_lease_script(keys=keys, args=[ttl_ms]))
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    def begin_full_sync(self) -> RedisFullSync:
        """A full sync on its own connection; the caller must open it before reading the store.

        Raises:
            CacheUnavailable: Redis cannot be reached.
        """
        return RedisFullSync(
            self._url,
            self._timeout_s,
            self._absent_count_key,
            self._full_sync_key,
            self.balance_key,
            self._read_text,
            self._read_sha,
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

    The reads issued while the previous write is out (or within one loop turn) leave
    as one script call, ``_ReadBatch``: one command and one lease check for all of
    them. Each read is sent only after its caller asked, so a reply is never older
    than its read (a read never joins a batch already sent).
    """

    def __init__(self, cache: RedisCache, connection: PipelinedRedis) -> None:
        self._cache = cache
        self._connection = connection
        # EVALSHA <sha> <key count> <lease> ...: the parts packed once.
        self._sha_arg = pack_arg(cache._read_sha.encode())
        self._lease_arg = pack_arg(cache.serving_key.encode())
        self._open: _ReadBatch | None = None  # the batch reads still join

    def get(self, account: Account) -> Awaitable[Balance | None]:
        """The cached balance; None when absent or while Redis holds no serving lease.

        Raises:
            CacheUnavailable: Redis cannot be reached.
        """
        self._cache._check_breaker()
        batch = self._open
        if batch is None or not batch.joinable:
            connection = self._connection.live()
            if connection is None:
                return self._get_connecting(account)
            batch = self._open = _ReadBatch(self._cache, self._sha_arg, self._lease_arg)
            connection.send_batch(batch)
        return batch.join(account)

    async def _get_connecting(self, account: Account) -> Balance | None:
        try:
            await self._connection.connected()
        except CacheUnavailable:
            self._cache._open_breaker()
            raise
        return await self.get(account)

    async def close(self) -> None:
        await self._connection.close()


# Reads per script call: Redis runs one call without serving others (about 1.5 µs a key).
MAX_READS_PER_CALL = 128


class _ReadBatch:
    """Reads that leave as one call of the read script (a ``pipelined.Batch``)."""

    __slots__ = (
        "_answered",
        "_cache",
        "_futures",
        "_keys",
        "_lease_arg",
        "_sha_arg",
        "accounts",
        "joinable",
    )

    def __init__(self, cache: RedisCache, sha_arg: bytes, lease_arg: bytes) -> None:
        self._cache = cache
        self._sha_arg = sha_arg
        self._lease_arg = lease_arg
        self.accounts: list[Account] = []
        self._keys: list[bytes] = []
        self._futures: list[asyncio.Future[Balance | None]] = []
        self.joinable = True
        self._answered = False  # its reply (or failure) is in, whether or not callers wait

    def join(self, account: Account) -> asyncio.Future[Balance | None]:
        future: asyncio.Future[Balance | None] = asyncio.get_running_loop().create_future()
        self.accounts.append(account)
        self._keys.append(pack_arg(self._cache.balance_key(account).encode()))
        self._futures.append(future)
        if len(self._keys) >= MAX_READS_PER_CALL:
            self.joinable = False
        return future

    def command(self) -> bytes:
        self.joinable = False
        count = len(self._keys)
        return b"".join(
            (
                b"*%d\r\n$7\r\nEVALSHA\r\n" % (count + 4),
                self._sha_arg,
                pack_arg(b"%d" % (count + 1)),
                self._lease_arg,
                *self._keys,
            )
        )

    def done(self) -> bool:
        return self._answered

    def set_result(self, reply: Reply) -> None:
        self.joinable, self._answered = False, True
        futures, accounts = self._futures, self.accounts
        if isinstance(reply, list):
            for account, fields, future in zip(accounts, reply, futures, strict=True):
                if not future.done():  # a cancelled caller's reply is dropped
                    future.set_result(_reply_balance(account, fields))
            return
        if isinstance(reply, hiredis.ReplyError) and not str(reply).startswith("NOSCRIPT"):
            self.set_exception(CacheUnavailable(f"redis: {reply}"))
            return
        # 0: no serving lease; NOSCRIPT: no full sync has vouched for this instance.
        metrics.CACHE_NOT_READY_READS.inc(len(futures))
        for future in futures:
            if not future.done():
                future.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        self.joinable, self._answered = False, True
        self._cache._open_breaker()
        for future in self._futures:
            if not future.done():
                future.set_exception(exc)


def _reply_balance(account: Account, fields: list[Any]) -> Balance | None:
    """The balance of one account's fields in a read script reply; None when it lacks one."""
    available, frozen, version, lock = fields
    if version is None or available is None or frozen is None:
        return None
    return Balance(
        account.user_id,
        account.currency,
        parse_decimal(str(available)),
        parse_decimal(str(frozen)),
        int(str(version)),
        # A hash written before locks existed has none: unlocked (a lock change gives the
        # account a new version, so its hash is written again).
        int(str(lock)) if lock is not None else 0,
    )


class RedisFullSync:
    """One full sync: every write and the final SCRIPT LOAD go over one connection.

    A restart breaks that connection; with retries off, the next command fails
    instead of reconnecting, so the read script is only ever loaded into the
    instance that received every balance of this sync.
    """

    def __init__(  # noqa: PLR0917 - one private caller, which passes them in this order
        self,
        url: str,
        timeout_s: float,
        absent_count_key: str,
        marker_key: str,
        key_of: Callable[[Account], str],
        read_text: str,
        read_sha: str,
    ) -> None:
        self._absent_count_key = absent_count_key
        self._marker_key = marker_key
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
            # The marker: a FLUSHDB during the sync takes it, and no lease follows
            # (``RedisCache.serve_reads``).
            self._client.set(marker_key, "1", ex=_FULL_SYNC_MARKER_TTL_S)
        except RedisError as exc:
            raise CacheUnavailable(f"redis full sync: {exc}") from exc
        self._script = self._client.register_script(_LAST_WRITE_WINS)

    def put_many(self, balances: Iterable[Balance]) -> None:
        """Raises: CacheUnavailable: the connection failed; abandon this sync."""
        try:
            # The scan read each balance as the store's current one: it may create.
            _write(self._script, self._absent_count_key, self._key_of, balances, create=True)
        except RedisError as exc:
            raise CacheUnavailable(f"redis full sync: {exc}") from exc

    def complete(self) -> None:
        """Vouch for the cache: readers are served from it again.

        Raises:
            CacheUnavailable: the connection failed; the cache stays unready.
        """
        try:
            if not self._client.exists(self._marker_key):
                raise CacheUnavailable("redis full sync: keys lost during the sync (flushed?)")
            sha = self._client.script_load(self._read_text)
        except RedisError as exc:
            raise CacheUnavailable(f"redis full sync: {exc}") from exc
        if sha != self._read_sha:
            raise CacheUnavailable(f"redis full sync: read script loaded as {sha}")

    def close(self) -> None:
        self._client.close()


def _write(
    script: Script,
    absent_count_key: str,
    key_of: Callable[[Account], str],
    balances: Iterable[Balance],
    *,
    create: bool,
    negative_entries_max: int = 0,
) -> None:
    """Write balances in script calls of _KEYS_PER_CALL keys (raises RedisError)."""
    batch = list(balances)
    head: list[str | int] = ["1" if create else "0", negative_entries_max]
    for start in range(0, len(batch), _KEYS_PER_CALL):
        chunk = batch[start : start + _KEYS_PER_CALL]
        args = list(head)
        for balance in chunk:
            args += [
                format_amount(balance.available),
                format_amount(balance.frozen),
                balance.version,
                balance.lock,
            ]
        script(keys=[absent_count_key, *(key_of(b.account) for b in chunk)], args=args)
