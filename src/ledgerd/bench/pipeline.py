"""What happens behind the API after a load: how far the consumer is behind, and when
the last accepted change was applied (the end-to-end figures of the change scenarios).

Read from outside the servers, through the Store and EventLog interfaces, so the
figures do not depend on a server's own metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerd.errors import LogUnavailable
from ledgerd.log import EventLog, open_log
from ledgerd.settings import Settings
from ledgerd.store import open_store


def _default(field: str) -> Any:
    return Settings.model_fields[field].default


@dataclass(frozen=True, slots=True)
class EndToEnd:
    """A change load followed until every accepted change had an outcome."""

    accepted: int  # changes the API accepted
    accepted_rate: float  # changes/s while the load ran
    consumer_lag_end: int | None  # log records not yet applied when the load stopped
    unfinished_end: int  # accepted requests without an outcome when the load stopped
    end_to_end_rate: float | None  # changes/s from the first call to the last APPLIED
    drain_s: float | None  # from the load's end to the last APPLIED
    settled: bool  # every accepted change got an outcome before the timeout

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted_rate": round(self.accepted_rate, 1),
            "end_to_end_rate": None
            if self.end_to_end_rate is None
            else round(self.end_to_end_rate, 1),
            "consumer_lag_end": self.consumer_lag_end,
            "unfinished_end": self.unfinished_end,
            "drain_s": None if self.drain_s is None else round(self.drain_s, 2),
            "settled": self.settled,
        }


class PipelineProbe:
    """Reads one deployment's store and log (its settings come from the server's env)."""

    def __init__(self, env: Mapping[str, str], data_dir: Path) -> None:
        self._log_url = env.get("LEDGERD_LOG_URL", _default("log_url"))
        self._topic = env.get("LEDGERD_TOPIC", _default("topic"))
        self._partitions = int(env.get("LEDGERD_PARTITIONS", _default("partitions")))
        self._data_dir = Path(env.get("LEDGERD_DATA_DIR", str(data_dir)))
        store_url = env.get("LEDGERD_STORE_URL") or f"sqlite:///{data_dir / 'ledgerd.sqlite'}"
        self._store = open_store(store_url)
        self._kafka: EventLog | None = None

    @contextmanager
    def _log(self) -> Iterator[EventLog]:
        if self._log_url.startswith("kafka://"):
            if self._kafka is None:
                self._kafka = self._open_log()
            yield self._kafka
            return
        # An embedded log learns its end offsets when opened: open it anew to see the
        # records the server appended since.
        log = self._open_log()
        try:
            yield log
        finally:
            log.close()

    def _open_log(self) -> EventLog:
        return open_log(self._log_url, data_dir=self._data_dir, partition_count=self._partitions)

    def consumer_lag(self) -> int:
        """Records in the log the store has not committed as applied (all partitions)."""
        with self._log() as log:
            ends = log.end_offsets(self._topic)
        applied = self._store.get_positions(self._topic)
        return sum(max(0, end - applied.get(partition, 0)) for partition, end in ends.items())

    def unfinished(self) -> int:
        """Accepted requests without an outcome yet (unpublished, in the log, or failed)."""
        return sum(self._store.count_unfinished().values())

    def wait_for_outcomes(self, timeout_s: float, poll_s: float = 0.25) -> bool:
        """Until every accepted request has an outcome and the log holds nothing unapplied;
        False at the timeout.

        The outbox alone is not enough: a transfer's credit leaves the outbox once the log
        has it, before it applies. The outbox is read again after the log, because applying
        a credit can write a return into it.
        """
        deadline = time.monotonic() + timeout_s
        # The log first: while it holds unapplied records the answer is "not yet" whatever
        # the outbox says, and counting the outbox costs a look at every row in flight.
        while (
            not self._log_drained()
            or self.unfinished()
            or not self._log_drained()
            or self.unfinished()
        ):
            if time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True

    def _log_drained(self) -> bool:
        try:
            return self.consumer_lag() == 0
        except LogUnavailable:
            return False  # Kafka's watermarks answer within a second, or not under load: ask again

    def last_applied_at_s(self) -> float | None:
        """Wall-clock time of the newest journal entry."""
        newest = self._store.last_applied_at_ms()
        return None if newest is None else newest / 1000

    def close(self) -> None:
        if self._kafka is not None:
            self._kafka.close()
        self._store.close()


def follow_to_the_end(
    probe: PipelineProbe,
    *,
    accepted: int,
    load_started_at_s: float,
    load_elapsed_s: float,
    timeout_s: float = 600.0,
) -> EndToEnd:
    """Right after a load stopped: the lag then, and the rate once everything is applied.

    The end-to-end rate counts from the first call's sending (a little before its
    acceptance, so the rate errs low) to the newest journal entry's applied_at_ms.
    """
    load_ended_at_s = time.time()
    lag = probe.consumer_lag()
    unfinished = probe.unfinished()
    settled = probe.wait_for_outcomes(timeout_s)
    last_applied_s = probe.last_applied_at_s() if settled else None
    rate = drain = None
    if last_applied_s is not None and last_applied_s > load_started_at_s:
        rate = accepted / (last_applied_s - load_started_at_s)
        drain = max(0.0, last_applied_s - load_ended_at_s)
    return EndToEnd(
        accepted=accepted,
        accepted_rate=accepted / load_elapsed_s if load_elapsed_s else 0.0,
        consumer_lag_end=lag,
        unfinished_end=unfinished,
        end_to_end_rate=rate,
        drain_s=drain,
        settled=settled,
    )
