"""Which partition owns a user, and which database shard owns a partition.

Kafka's Java client maps a key to ``toPositive(murmur2(key)) % partitions``;
ledgerd's key is the user_id in decimal ASCII, so both logs agree. A partition's
rows live in shard ``partition mod shards`` (docs/scaling.md).
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash, as an unsigned 32-bit integer."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


def user_key(user_id: int) -> bytes:
    """The event-log key of a user's changes."""
    return str(user_id).encode("ascii")


def partition_for_user(user_id: int, partition_count: int) -> int:
    """The partition whose single writer applies this user's changes."""
    return (murmur2(user_key(user_id)) & 0x7FFFFFFF) % partition_count


def shard_for_partition(partition: int, shard_count: int) -> int:
    """The database shard that holds a partition's balances, journal, outcomes and offset."""
    return partition % shard_count


def shard_for_user(user_id: int, partition_count: int, shard_count: int) -> int:
    """The database shard that holds a user's rows."""
    return shard_for_partition(partition_for_user(user_id, partition_count), shard_count)
