"""How a server process's cyclic garbage collector runs.

Python counts tracked objects made less those freed, and collects the young generation
when the count passes its threshold (700 by default); every tenth of those collects the
middle one, and the old generation is walked whole once enough objects survived to it.
A server makes and drops objects by the call and the batch, so at 700 it collected
constantly, and the old generation, which holds everything made at start (modules,
classes, the wiring: some 86,000 objects), was walked again and again.
"""

from __future__ import annotations

import gc

# The young generation's threshold in a process that serves calls only. grpc.aio leaves
# a few objects of cyclic garbage per call (its method lookup's closure), which only a
# collection frees, at about 150-190 ns an object (measured here): 20,000 keeps each young
# collection to a few milliseconds. `ledgerd bench --scenario read --workers 2`, each API
# worker at 700 before this: some 20 ms of collections a second, 7 full ones of 43 ms each
# in the 10 s measured, walking what start built.
SERVING_YOUNG_THRESHOLD = 20_000
# In a process that applies changes: only a peak of objects alive at once reaches it, and
# two consumer batches of 5,000 (one committing, one being decided) hold some 50-100k.
# `ledgerd bench --scenario apply`: at 20,000 the consumer ran 109 young and 10 middle
# collections, 0.83 s of its CPU (2.8 µs a change); at 200,000, one (0.07 s). A young
# collection then takes up to some 40 ms, about what deciding one batch takes.
APPLYING_YOUNG_THRESHOLD = 200_000


def settle_collector(*, applies_changes: bool) -> None:
    """Once a server process has built and started its parts: collect what starting left
    behind, then freeze what is left (it lives as long as the process), so that no full
    collection walks it again; and raise the young threshold (never lowered)."""
    gc.collect()
    gc.freeze()
    young = APPLYING_YOUNG_THRESHOLD if applies_changes else SERVING_YOUNG_THRESHOLD
    threshold, *older = gc.get_threshold()
    gc.set_threshold(max(threshold, young), *older)
