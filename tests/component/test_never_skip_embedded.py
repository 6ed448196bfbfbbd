"""Nothing skipped on the embedded log: holes, a replaced log file, the unfinished alarm."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from component_support import DLQ, TOPIC, Rig
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType
from ledgerd.log.embedded import EmbeddedLog

# partition_for_user(user, 3): users 1, 5 and 7 are on partition 0, user 4 on partition 1.
USER_P0, OTHER_USER_P0, USER_P1 = 1, 5, 4


def deposit(request_id: str, user_id: int) -> ChangeRequest:
    return ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, SCALE)


def gap_gauge(partition: int) -> float | None:
    return REGISTRY.get_sample_value("ledgerd_partition_gap", {"partition": str(partition)})


def available(rig: Rig, user_id: int) -> int:
    found = rig.store.get_balances(user_id, "USD")
    return found[0].available if found else 0


def test_a_hole_in_a_partition_stops_it_and_the_others_go_on(rig: Rig, tmp_path: Path) -> None:
    """Offset 1 of partition 0 missing: offset 0 applies, 2 and later never do; partition 1
    applies everything; the consumer reports the stopped partition and sets the gauge."""
    rig.accept([deposit("a0", USER_P0), deposit("a1", USER_P0), deposit("a2", OTHER_USER_P0)])
    rig.accept([deposit("b0", USER_P1), deposit("b1", USER_P1)])
    rig.relay().run_until_idle()
    with sqlite3.connect(tmp_path / "log.sqlite") as raw:
        raw.execute("DELETE FROM records WHERE topic = ? AND partition = 0 AND offset = 1", [TOPIC])
    consumer = rig.consumer()
    consumer.run_until_idle()
    assert available(rig, USER_P0) == SCALE  # a0 only
    assert available(rig, OTHER_USER_P0) == 0  # a2, after the hole, is not applied
    assert available(rig, USER_P1) == 2 * SCALE
    assert rig.store.get_positions(TOPIC)[0] == 1
    assert "records 1..1 are missing" in consumer.stopped_partitions[0]
    assert list(consumer.stopped_partitions) == [0]
    assert gap_gauge(0) == 1
    consumer.run_until_idle()  # still stopped: nothing past the hole, ever
    assert available(rig, OTHER_USER_P0) == 0
    consumer.close()
    assert gap_gauge(0) == 0  # no longer this consumer's partition


def test_a_replaced_log_file_is_detected_at_the_claim(rig: Rig, tmp_path: Path) -> None:
    """A new log file (another topic id, offsets from 0) stops every partition the store had
    read in the old one, instead of applying the new file's records from the old offsets."""
    rig.accept([deposit("a0", USER_P0), deposit("b0", USER_P1)])
    rig.relay().run_until_idle()
    first = rig.consumer()
    first.run_until_idle()
    first.close()
    assert available(rig, USER_P0) == SCALE
    replaced = EmbeddedLog(tmp_path / "other-log.sqlite", partition_count=3)
    replaced.ensure_topics([TOPIC, DLQ])
    rig.log.close()
    rig.log = replaced
    rig.accept([deposit("a1", USER_P0), deposit("a2", USER_P0)])
    rig.relay().run_until_idle()
    second = rig.consumer()
    with capture_logs() as logs:
        second.run_until_idle()
    assert available(rig, USER_P0) == SCALE  # a1, a2 wait: nothing is read from the new file
    assert sorted(second.stopped_partitions) == [0, 1, 2]
    assert "recreated" in second.stopped_partitions[0]
    assert any(e["event"].startswith("partition stopped") for e in logs)
    second.close()


def test_the_relay_reports_the_oldest_request_without_an_outcome(rig: Rig) -> None:
    """A request accepted long ago and never applied, whatever its status, shows in the
    gauge and in a warning."""
    now_ms = int(time.time() * 1000)
    rig.accept([deposit("old", USER_P0)], now_ms=now_ms - 3_600_000)
    relay = rig.relay(unfinished_warn_s=600.0)
    with capture_logs() as logs:
        relay.run_until_idle()  # published (SENT), still not applied
    age_s = REGISTRY.get_sample_value("ledgerd_oldest_unfinished_request_age_seconds")
    assert age_s is not None and 3600 <= age_s < 3700
    warnings = [e for e in logs if e["event"].startswith("an accepted request has had no outcome")]
    assert warnings and warnings[0]["log_level"] == "warning"
    rig.consumer().run_until_idle()
    rig.relay().run_until_idle()  # a new relay counts at its first sweep
    assert REGISTRY.get_sample_value("ledgerd_oldest_unfinished_request_age_seconds") == 0
