"""The periodic audit job exports what the audit finds: problems, transfers in flight."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY

from ledgerd import metrics
from ledgerd.audit.job import AuditJob
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeType, JournalEntry
from ledgerd.store.base import BatchCommit
from ledgerd.store.sqlite import SqliteStore

SOURCE, DESTINATION = 1, 2


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def test_the_leader_exports_transfers_in_flight_and_stuck_ones_as_problems(
    tmp_path: Path,
) -> None:
    """A debit applied long ago and never credited: one in flight, one problem (stuck);
    a follower audits nothing."""
    store = SqliteStore(tmp_path / "store.sqlite")
    store.migrate()
    try:
        deposit = JournalEntry(
            "d", SOURCE, "USD", ChangeType.DEPOSIT, 10 * SCALE, 10 * SCALE, 0, 1, 1000
        )
        debit = JournalEntry(
            "T", SOURCE, "USD", ChangeType.TRANSFER_OUT, 4 * SCALE, 6 * SCALE, 0, 2, 1000, "",
            "T", DESTINATION,
        )  # fmt: skip
        store.commit_batch(BatchCommit([], [deposit, debit], [], 1000))
        metrics.AUDIT_TRANSFERS_IN_FLIGHT.set(-1)
        AuditJob(store, lambda: False, 3600, max_in_flight_s=60).run_once()
        assert gauge("ledgerd_audit_transfers_in_flight") == -1.0
        AuditJob(store, lambda: True, 3600, max_in_flight_s=60).run_once()
        assert gauge("ledgerd_audit_transfers_in_flight") == 1.0
        assert gauge("ledgerd_audit_problems") == 1.0
    finally:
        store.close()
