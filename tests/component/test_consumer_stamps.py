"""A consumer whose clock is behind the newest recorded stamp: its batches stamp no earlier."""

from __future__ import annotations

import time

from component_support import TOPIC, Rig

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.store.base import BatchCommit

HOUR_MS = 3_600_000


def test_a_consumer_behind_the_recorded_stamp_stamps_its_batches_with_it(rig: Rig) -> None:
    """A consumer with a clock an hour ahead committed last (here: a batch of partition 2
    that moved nothing, stamped an hour from now). This consumer's clock is behind that
    stamp, so the deposits it applies, on every partition, carry it: the account's stamps
    never fall, and each later batch stamps no earlier than the one before."""
    ahead_ms = int(time.time() * 1000) + HOUR_MS
    claim = rig.store.claim_partition(TOPIC, 2)
    rig.store.commit_batch(BatchCommit([claim], [], [], ahead_ms))
    for batch in range(2):
        rig.accept(
            [
                ChangeRequest(f"d{batch}-{user}", user, "USD", ChangeType.DEPOSIT, SCALE)
                for user in range(1, 7)
            ]
        )
        rig.relay().run_until_idle()
        rig.consumer().run_until_idle()
    stamps = {
        user: [e.applied_at_ms for e in rig.store.get_journal(user, "USD", 0, 10)]
        for user in range(1, 7)
    }
    assert all(len(each) == 2 and ahead_ms <= each[0] <= each[1] for each in stamps.values())
    assert all(s < ahead_ms + HOUR_MS for each in stamps.values() for s in each)
