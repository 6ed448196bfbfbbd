"""How a server process's cyclic garbage collector runs.

Python counts tracked objects made less those freed, and collects the young generation
when the count passes its threshold (700 by default); every tenth of those collects the
middle one, and the old generation is walked whole once enough objects survived to it.
A server makes and drops objects by the call and the batch, so at 700 it collected
constantly, and the old generation, which holds everything made at start (modules,
classes, the wiring), was walked again and again.
"""

from __future__ import annotations

import gc

# The young generation's threshold. Only a peak of objects alive at once reaches it: two
# consumer batches of 5,000 (one committing, one being decided) hold some 50-100k, 64 calls
# in flight far fewer. Measured, `ledgerd bench --scenario apply`: at 20,000 the consumer ran
# 109 young and 10 middle collections, 0.83 s of its CPU (2.8 µs a change); at 200,000, one
# (0.07 s). `--scenario read --workers 2`, each API worker at 700: about 20 ms of collections
# a second, 7 full ones of 43 ms each over the 10 s measured. Cyclic garbage is freed later:
# at most this many objects of it wait.
YOUNG_THRESHOLD = 200_000


def settle_collector() -> None:
    """Once a server process has built and started its parts: collect what starting left
    behind, then freeze what is left (it lives as long as the process), so that no full
    collection walks it again, and raise the young threshold (never lowered)."""
    gc.collect()
    gc.freeze()
    threshold, *older = gc.get_threshold()
    gc.set_threshold(max(threshold, YOUNG_THRESHOLD), *older)
