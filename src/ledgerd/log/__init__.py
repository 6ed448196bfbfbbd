"""The event log: ordered, partitioned, durable (embedded, or Apache Kafka)."""

from __future__ import annotations

from pathlib import Path

from ledgerd.log.base import EventLog, LogConsumer, LogProducer, LogReader, LogRecord


def open_log(
    url: str, *, data_dir: Path, partition_count: int, session_timeout_ms: int = 10_000
) -> EventLog:
    """Open the event log a URL names: ``embedded:`` or ``kafka://host:port``.

    Raises:
        ValueError: the URL's scheme is not a known log.
    """
    if url.startswith("embedded:"):
        from ledgerd.log.embedded import EmbeddedLog

        return EmbeddedLog(data_dir / "eventlog.sqlite", partition_count)
    if url.startswith("kafka://"):
        from ledgerd.log.kafka import KafkaLog

        return KafkaLog(
            url.removeprefix("kafka://").rstrip("/"),
            partition_count,
            session_timeout_ms=session_timeout_ms,
        )
    raise ValueError(f"unknown log URL {url!r}; use embedded: or kafka://host:port")


__all__ = ["EventLog", "LogConsumer", "LogProducer", "LogReader", "LogRecord", "open_log"]
