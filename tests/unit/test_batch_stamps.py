"""Batch stamps: the clock, never read backwards, never below a claimed stamp."""

from __future__ import annotations

from ledgerd.consumer.stamps import BatchStamps


def test_stamps_follow_the_clock_and_never_fall_when_it_goes_back() -> None:
    readings = iter([1000, 2000, 1500, 1800, 2500])
    stamps = BatchStamps(lambda: next(readings))
    assert [stamps.next() for _ in range(5)] == [1000, 2000, 2000, 2000, 2500]


def test_a_claimed_stamp_ahead_of_the_clock_is_the_floor_until_the_clock_passes_it() -> None:
    readings = iter([1000, 1100, 9500])
    stamps = BatchStamps(lambda: next(readings))
    stamps.claimed(9000)
    stamps.claimed(3000)  # an older claim lowers nothing
    assert [stamps.next() for _ in range(3)] == [9000, 9000, 9500]
