"""The consumer role's component: the batch consumer, wired to the parts it feeds."""

from __future__ import annotations

import asyncio

from ledgerd.cache.base import BalanceSink
from ledgerd.cache.memory import MemoryCache
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.events.publisher import EventPublisher
from ledgerd.outbox.relay import Relay
from ledgerd.runtime.supervisor import Child
from ledgerd.settings import Settings
from ledgerd.wiring.parts import Parts


def consumer_config(settings: Settings, *, feed_topic: str | None = None) -> ConsumerConfig:
    return ConsumerConfig(
        topic=settings.topic,
        dlq_topic=settings.dlq_topic,
        group_id=settings.consumer_group,
        batch_max_messages=settings.consumer_batch_max_messages,
        batch_delay_s=settings.consumer_batch_delay_ms / 1000,
        poll_timeout_s=settings.consumer_poll_timeout_ms / 1000,
        max_retries=settings.consumer_max_retries,
        max_decision_failures=settings.consumer_max_decision_failures,
        max_accounts_in_memory=settings.consumer_max_accounts_in_memory,
        feed_topic=feed_topic,
        # Half the sweep age: the other half absorbs clock skew between processes.
        trust_window_s=settings.relay_sweep_min_age_s / 2,
    )


def declare_consumer(parts: Parts) -> None:
    """The consumer: writes an in-process cache directly, publishes to the cache feed for
    a shared one (its updater may run in another process), hands a transfer's credits to
    the relay at once rather than leaving them to the sweep, and each commit to the event
    publisher."""
    settings, backends = parts.settings, parts.backends
    sink: BalanceSink | None = backends.cache if isinstance(backends.cache, MemoryCache) else None
    config = consumer_config(
        settings, feed_topic=settings.cache_feed_topic if parts.shared_cache else None
    )
    relay, events = parts.find(Relay), parts.find(EventPublisher)
    consumer = BatchConsumer(
        backends.store,
        backends.event_log,
        sink,
        parts.outcomes,
        config,
        signer=parts.signer,
        send_on=relay.hand_off if relay is not None else None,
        on_committed=events.hand_off if events is not None else None,
    )
    parts.supervisor.add(
        Child(
            "consumer",
            thread=consumer.run,
            has_work=consumer.has_work,
            close=lambda: asyncio.to_thread(consumer.close),
        )
    )
    parts.offer(consumer)

    def probe() -> tuple[bool, str]:
        stopped = consumer.stopped_partitions
        if stopped:
            gaps = "; ".join(f"{p}: {why}" for p, why in sorted(stopped.items()))
            return False, f"partitions stopped by a gap in the log: {gaps}"
        paused = consumer.paused_partitions
        if paused:
            return False, f"paused partitions {paused}"
        return True, f"ok, partitions {consumer.owned_partitions}"

    parts.probes["consumer"] = probe
