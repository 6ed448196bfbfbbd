"""A server process's collector settles once its parts are started."""

from __future__ import annotations

import gc

from ledgerd.runtime.collector import YOUNG_THRESHOLD, settle_collector


def test_settling_freezes_what_start_built_and_raises_the_young_threshold_only() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        kept = [object(), [1], {"a": 1}]  # alive at start: frozen, never walked again
        settle_collector()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        gc.set_threshold(YOUNG_THRESHOLD * 2, 10, 10)
        settle_collector()  # never lowered
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
