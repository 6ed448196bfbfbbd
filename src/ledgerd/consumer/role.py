"""The consumer role's component: the batch consumer, wired to the parts it feeds."""

from __future__ import annotations

import asyncio
import gc

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


# The collector's first threshold in a process that applies changes. The consumer makes
# and drops several tracked objects per change (records, rows, balances), so at Python's
# default of 700 a young collection ran every few dozen changes, and the older
# generations, which grow with the balances held in memory, were walked again and again:
# the column path's own Python (view, decide and publish 40 batches of 5,000 changes over
# 100k accounts, a loop without I/O) took 5.1 s of CPU at 700, 3.7 s at 5,000,
# 3.4 s at 20,000. The count is of tracked objects made less those freed, so what
# matters is the peak a batch holds at once: two batches of 5,000 (one committing, one
# decided) hold some 50-100k. At 20,000 every batch crossed it about twice, each time
# walking what the batch held (`ledgerd bench --scenario apply`: 109 young and 10 middle
# collections, 0.83 s of the consumer's CPU, 2.8 µs a change); at 200,000 no batch reaches
# it (1 collection, 0.07 s). Only cyclic garbage waits longer to be freed: at most this
# many objects of it.
GC_YOUNG_THRESHOLD = 200_000


def declare_consumer(parts: Parts) -> None:
    """The consumer: writes an in-process cache directly, publishes to the cache feed for
    a shared one (its updater may run in another process), hands a transfer's credits to
    the relay at once rather than leaving them to the sweep, and each commit to the event
    publisher."""
    settings, backends = parts.settings, parts.backends
    # Process-wide, set where the process is known to apply changes; never lowered.
    threshold, *older = gc.get_threshold()
    gc.set_threshold(max(threshold, GC_YOUNG_THRESHOLD), *older)
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
