"""The Redis balance cache: one hash per account, written by a last-write-wins script.

The script compares versions inside Redis, so updates from several
processes, retries and full syncs can arrive in any order and the newest
version still wins. Timeouts are short, and after a failure Redis is skipped for a second: a
slow or dead Redis must not slow reads (they fall back to the store) or the
consumer (the updater keeps pending writes and retries).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
from redis.exceptions import RedisError

from ledgerd.constants import DEFAULT_REDIS_PREFIX, REDIS_BALANCE_KEY
from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable

# KEYS = account hashes; ARGV = available, frozen, version for each key in turn.
# One call writes a whole batch: per-key round trips cost more than the writes.
_LAST_WRITE_WINS = """
local written = 0
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local current = redis.call('HGET', key, 'version')
  if (not current) or tonumber(current) < tonumber(ARGV[base + 3]) then
    redis.call('HSET', key, 'available', ARGV[base + 1], 'frozen', ARGV[base + 2],
               'version', ARGV[base + 3])
    written = written + 1
  end
end
return written
"""
# Keys per script call: large enough to amortise, small enough not to stall Redis.
_KEYS_PER_CALL = 500


class RedisCache:
    """BalanceCache on Redis, shared by every ledgerd process."""

    def __init__(
        self, url: str, prefix: str = DEFAULT_REDIS_PREFIX, timeout_s: float = 0.5
    ) -> None:
        self._balance_prefix = prefix + REDIS_BALANCE_KEY
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._script = self._client.register_script(_LAST_WRITE_WINS)
        # After a failure, callers skip Redis for a moment instead of each waiting a timeout.
        self._retry_after_s = 1.0
        self._down_until = 0.0

    def balance_key(self, account: Account) -> str:
        return f"{self._balance_prefix}{account.user_id}:{account.currency}"

    def _check_breaker(self) -> None:
        if time.monotonic() < self._down_until:
            raise CacheUnavailable("redis: recently unreachable, not trying again yet")

    def _trip(self, exc: RedisError) -> CacheUnavailable:
        self._down_until = time.monotonic() + self._retry_after_s
        return CacheUnavailable(f"redis: {exc}")

    def get(self, account: Account) -> Balance | None:
        self._check_breaker()
        try:
            available, frozen, version = self._client.hmget(
                self.balance_key(account), ["available", "frozen", "version"]
            )
        except RedisError as exc:
            raise self._trip(exc) from exc
        if version is None or available is None or frozen is None:
            return None
        return Balance(
            account.user_id,
            account.currency,
            parse_decimal(str(available)),
            parse_decimal(str(frozen)),
            int(version),
        )

    def put_many(self, balances: Iterable[Balance]) -> None:
        self._check_breaker()
        batch = list(balances)
        try:
            for start in range(0, len(batch), _KEYS_PER_CALL):
                chunk = batch[start : start + _KEYS_PER_CALL]
                args: list[str | int] = []
                for balance in chunk:
                    args += [
                        format_amount(balance.available),
                        format_amount(balance.frozen),
                        balance.version,
                    ]
                self._script(keys=[self.balance_key(b.account) for b in chunk], args=args)
        except RedisError as exc:
            raise self._trip(exc) from exc

    def ping(self) -> None:
        try:
            self._client.ping()
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    def close(self) -> None:
        self._client.close()
