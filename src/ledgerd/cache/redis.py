"""The Redis balance cache: one hash per account, written by a last-write-wins script.

The script compares versions inside Redis, so updates from several
processes, retries and full syncs can arrive in any order and the newest
version still wins. Timeouts are short: a slow Redis must not slow reads
(they fall back to the store) or the consumer (the updater keeps pending
writes and retries).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.exceptions import RedisError

from ledgerd.constants import REDIS_BALANCE_PREFIX
from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable

# KEYS[1] = account hash; ARGV = available, frozen, version.
_LAST_WRITE_WINS = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'frozen', ARGV[2], 'version', ARGV[3])
return 1
"""


def balance_key(account: Account) -> str:
    return f"{REDIS_BALANCE_PREFIX}{account.user_id}:{account.currency}"


class RedisCache:
    """BalanceCache on Redis, shared by every ledgerd process."""

    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._script = self._client.register_script(_LAST_WRITE_WINS)

    def get(self, account: Account) -> Balance | None:
        try:
            available, frozen, version = self._client.hmget(
                balance_key(account), ["available", "frozen", "version"]
            )
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc
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
        try:
            pipeline = self._client.pipeline(transaction=False)
            for balance in balances:
                self._script(
                    keys=[balance_key(balance.account)],
                    args=[
                        format_amount(balance.available),
                        format_amount(balance.frozen),
                        balance.version,
                    ],
                    client=pipeline,
                )
            pipeline.execute()
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    def ping(self) -> None:
        try:
            self._client.ping()
        except RedisError as exc:
            raise CacheUnavailable(f"redis: {exc}") from exc

    def close(self) -> None:
        self._client.close()
