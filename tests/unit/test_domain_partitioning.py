"""Partitioning agrees with Kafka's default partitioner."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerd.domain.partitioning import murmur2, partition_for_user, user_key


def as_signed_32(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # Kafka's own test vectors (UtilsTest.testMurmur2), Java ints.
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafka_test_vectors(key: bytes, expected: int) -> None:
    """murmur2 gives the same 32-bit hash as Kafka's Java client."""
    assert as_signed_32(murmur2(key)) == expected


@given(st.binary(max_size=64))
def test_murmur2_is_an_unsigned_32_bit_integer(key: bytes) -> None:
    """The hash of any key fits in an unsigned 32-bit integer."""
    assert 0 <= murmur2(key) < 2**32


@pytest.mark.parametrize(
    ("user_id", "key"), [(1, b"1"), (42, b"42"), (2**64 - 1, b"%d" % (2**64 - 1))]
)
def test_user_key_is_the_decimal_ascii_user_id(user_id: int, key: bytes) -> None:
    """A user's event-log key is its user_id in decimal ASCII."""
    assert user_key(user_id) == key


def test_partition_for_user_follows_kafka_to_positive_modulo() -> None:
    """The partition is (murmur2(key) & 0x7fffffff) % count, as Kafka computes it."""
    # murmur2(b"21") is negative as a Java int, so toPositive matters here.
    assert partition_for_user(21, 7) == (-973932308 & 0x7FFFFFFF) % 7


@given(st.integers(min_value=1, max_value=2**64 - 1), st.integers(min_value=1, max_value=1024))
def test_partition_for_user_is_in_range_and_stable(user_id: int, partition_count: int) -> None:
    """A user always maps to the same partition, within 0..count-1."""
    partition = partition_for_user(user_id, partition_count)
    assert 0 <= partition < partition_count
    assert partition_for_user(user_id, partition_count) == partition


def _reference_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 transcribed word by word (the unoptimized form)."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & mask
        k = ((k ^ (k >> 24)) * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & mask
    h = ((h ^ (h >> 13)) * m) & mask
    return h ^ (h >> 15)


@given(st.binary(max_size=200))
def test_murmur2_matches_the_word_by_word_form_at_any_length(key: bytes) -> None:
    """The unpacked-words murmur2 agrees with the plain transcription, keys past 64 bytes
    (unpacked by a Struct built on demand) included."""
    assert murmur2(key) == _reference_murmur2(key)
