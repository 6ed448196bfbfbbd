"""A server process's collector settles once its parts are started."""

from __future__ import annotations

import gc

import pytest

from ledgerd.runtime.collector import (
    APPLYING_YOUNG_THRESHOLD,
    SERVING_YOUNG_THRESHOLD,
    settle_collector,
)


@pytest.mark.parametrize(
    ("applies_changes", "young"),
    [(False, SERVING_YOUNG_THRESHOLD), (True, APPLYING_YOUNG_THRESHOLD)],
)
def test_settling_freezes_what_start_built_and_raises_the_young_threshold_only(
    applies_changes: bool, young: int
) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        kept = [object(), [1], {"a": 1}]  # alive at start: frozen, never walked again
        settle_collector(applies_changes=applies_changes)
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == (young, 10, 10)
        gc.set_threshold(young * 2, 10, 10)
        settle_collector(applies_changes=applies_changes)  # never lowered
        assert gc.get_threshold()[0] == young * 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
