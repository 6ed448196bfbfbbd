"""Names shared across processes: Redis key prefixes and the like, in one place."""

from __future__ import annotations

# One Redis hash per account: fields available, frozen, version.
REDIS_BALANCE_PREFIX = "ledgerd:balance:"
# Replay protection of signed requests (SET NX EX).
REDIS_NONCE_PREFIX = "ledgerd:nonce:"
