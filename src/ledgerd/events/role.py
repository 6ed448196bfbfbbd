"""The change events' component: the publisher of the journal of the partitions this
process's consumer owns (with LEDGERD_EVENTS on, beside the consumer)."""

from __future__ import annotations

import asyncio

from ledgerd.consumer.worker import BatchConsumer
from ledgerd.events.publisher import EventPublisher, PublisherConfig
from ledgerd.runtime.supervisor import Child
from ledgerd.wiring.parts import Parts


def declare_event_publisher(parts: Parts) -> None:
    """Declared before the consumer, which hands it each commit: it starts first and
    stops after the consumer, so the last commits still reach it."""
    settings = parts.settings

    def owned() -> list[int]:
        consumer = parts.find(BatchConsumer)
        return consumer.owned_partitions if consumer is not None else []

    publisher = EventPublisher(
        parts.backends.store,
        parts.backends.event_log,
        owned,
        PublisherConfig(
            topic=settings.events_topic,
            source_topic=settings.topic,
            poll_interval_s=settings.events_poll_interval_ms / 1000,
            linger_ms=settings.events_linger_ms,
        ),
    )
    parts.supervisor.add(
        Child(
            "events",
            thread=publisher.run,
            wake=publisher.wake,
            close=lambda: asyncio.to_thread(publisher.close),
        )
    )
    parts.offer(publisher)
