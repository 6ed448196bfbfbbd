"""Every Prometheus metric of ledgerd, in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# No ``<name>_created`` twin per counter and histogram: in the text format Prometheus
# stores each as one more series, which dashboards never use.
# (prometheus_client leaves the function untyped)
disable_created_metrics()  # type: ignore[no-untyped-call]

# Labels of the grpc-ecosystem (go-grpc-prometheus), so dashboards written for any gRPC
# service work; ``protocol`` tells the REST gateway's calls from gRPC calls.
RPC_LABELS = ["protocol", "grpc_type", "grpc_service", "grpc_method"]
RPC_REQUESTS = Counter(
    "ledgerd_rpc_requests_total",
    "API calls answered (gRPC and REST, health and reflection included), by method and"
    " status code.",
    [*RPC_LABELS, "grpc_code"],
)
RPC_LATENCY = Histogram(
    "ledgerd_rpc_latency_seconds",
    "API call latency (a stream: its whole life), by method.",
    RPC_LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ACCEPTED_CHANGES = Counter(
    "ledgerd_accepted_changes_total", "Change requests committed to the outbox."
)
ACCEPT_COMMIT_ROWS = Histogram(
    "ledgerd_accept_commit_rows",
    "Requests per group commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000),
)
OUTBOX_REQUESTS = Counter(
    "ledgerd_outbox_requests_total",
    "Outbox status transitions made by the relay: sent, failed.",
    ["status"],
)
OUTBOX_ROWS = Gauge(
    "ledgerd_outbox_rows",
    "Outbox rows without an outcome, by status (pending, sent, failed), as of the last sweep.",
    ["status"],
)
OUTBOX_IN_FLIGHT = Gauge(
    "ledgerd_outbox_in_flight", "Requests handed to the relay and not yet confirmed by the log."
)
OUTBOX_OLDEST_UNSENT_AGE = Gauge(
    "ledgerd_outbox_oldest_unsent_age_seconds",
    "Age of the oldest PENDING/FAILED row found by the relay's last sweep (0 when none).",
)
CONSUMER_BATCH_SIZE = Histogram(
    "ledgerd_consumer_batch_messages",
    "Messages per consumer batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
CONSUMER_APPLY_LATENCY = Histogram(
    "ledgerd_consumer_apply_seconds",
    "Time to apply and commit one consumer batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CHANGES = Counter(
    "ledgerd_changes_total", "Changes decided by the consumer, by outcome.", ["outcome"]
)
DUPLICATE_MESSAGES = Counter(
    "ledgerd_consumer_duplicate_messages_total",
    "Log messages skipped because their request already had an outcome.",
)
CONSUMER_CHECKED_MESSAGES = Counter(
    "ledgerd_consumer_checked_messages_total",
    "Log messages whose request outcome was read before deciding them (resent, appended"
    " later than the trust window after acceptance, unsigned, or retried); the rest are"
    " applied without a read.",
)
DLQ_MESSAGES = Counter(
    "ledgerd_dlq_messages_total",
    "Messages sent to the DLQ, by reason: poison (undecodable, invalid, not from the outbox),"
    " store_rejected (the database refuses its values), decision_failed (deciding it raised,"
    " max_decision_failures times).",
    ["reason"],
)
# Declared up front, so each reason's series exists (at 0) before its first dead letter.
DLQ_REASONS = ("poison", "store_rejected", "decision_failed")
for _reason in DLQ_REASONS:
    DLQ_MESSAGES.labels(reason=_reason)
CONSUMER_DECISION_FAILURES = Counter(
    "ledgerd_consumer_decision_failures_total",
    "Times deciding a log record raised an unexpected exception (each counted in the store;"
    " the record is dead-lettered after max_decision_failures).",
)
FENCED_BATCHES = Counter(
    "ledgerd_fenced_batches_total", "Batches refused because another consumer owns the partition."
)
CONSUMER_LAG = Gauge(
    "ledgerd_consumer_lag_messages",
    "Messages in the log not yet applied, by partition.",
    ["partition"],
)
CONSUMER_RETRIES = Counter(
    "ledgerd_consumer_retries_total", "Batch attempts retried after a transient error."
)
CACHE_READS = Counter(
    "ledgerd_cache_reads_total",
    "GetBalance cache lookups, by result: hit, negative (an untouched account's cached"
    " zeros), miss.",
    ["result"],
)
CACHE_UPDATES = Counter(
    "ledgerd_cache_updates_total", "Balances written to the cache by the updater."
)
CACHE_UPDATE_FAILURES = Counter(
    "ledgerd_cache_update_failures_total", "Cache update batches that failed (kept pending)."
)
LEADER = Gauge("ledgerd_leader", "1 while this process holds the lock, by lock name.", ["lock"])
LEADER_EPOCH = Gauge(
    "ledgerd_leader_epoch", "Epoch of the lock this process last held, by lock name.", ["lock"]
)
OUTBOX_CLEANED = Counter(
    "ledgerd_outbox_cleaned_total",
    "Outbox rows deleted by the sweep once they had an outcome and were older than the sweep age.",
)
AUTH_FAILURES = Counter(
    "ledgerd_auth_failures_total",
    "Calls refused by signature checks, by reason (never told to the client).",
    ["reason"],
)
CONSUMER_PAUSED_PARTITIONS = Gauge(
    "ledgerd_consumer_paused_partitions",
    "Partitions this consumer paused after repeated failures (it reports unhealthy meanwhile).",
)
PARTITION_GAP = Gauge(
    "ledgerd_partition_gap",
    "1 while this consumer holds a partition stopped by a gap in the log (records gone"
    " before they were applied, or another incarnation of the topic), by partition.",
    ["partition"],
)
OLDEST_UNFINISHED_AGE = Gauge(
    "ledgerd_oldest_unfinished_request_age_seconds",
    "Age of the oldest accepted request without an outcome, whatever its outbox status"
    " (pending, sent, failed), as of the relay's last count (0 when none).",
)
AUDIT_PROBLEMS = Gauge(
    "ledgerd_audit_problems", "Discrepancies found by the last periodic audit (0 when clean)."
)
AUDIT_TRANSFERS_IN_FLIGHT = Gauge(
    "ledgerd_audit_transfers_in_flight",
    "Transfers debited and neither credited nor returned, at the last periodic audit.",
)
AUDIT_LAST_RUN = Gauge(
    "ledgerd_audit_last_run_timestamp_seconds", "When the last periodic audit finished (Unix time)."
)
HOLDS_EXPIRED = Counter(
    "ledgerd_hold_expiries_sent_total",
    "Hold expiries (HOLD_EXPIRE) the leader's sweep accepted into the outbox.",
)
COMPONENT_FAILURES = Counter(
    "ledgerd_component_failures_total",
    "Unexpected exceptions of supervised components (each one is followed by a restart).",
    ["component"],
)
COMPONENT_UP = Gauge(
    "ledgerd_component_up",
    "1 while a supervised component runs and makes progress; 0 when stopped, down or stalled.",
    ["component"],
)
CACHE_NOT_READY_READS = Counter(
    "ledgerd_cache_not_ready_reads_total",
    "Cache reads refused because the cache holds no serving lease (no full sync has vouched"
    " for it since it lost state, or an answer it lacks fenced it).",
)
CACHE_ANSWER_WRITE_FAILURES = Counter(
    "ledgerd_cache_answer_write_failures_total",
    "Balances an answer could not write to the cache before answering (each raised the"
    " cache's read fence).",
)
CACHE_FENCE_RAISES = Counter(
    "ledgerd_cache_fence_raises_total",
    "Read fences raised: the shared cache serves no reads until a full sync repairs it.",
)
CACHE_LEASE_REMAINING = Gauge(
    "ledgerd_cache_lease_remaining_seconds",
    "On the cache-sync leader: how long the shared cache may still serve reads (0: it serves"
    " none until the next lease).",
)
CACHE_FULL_SYNCS = Counter(
    "ledgerd_cache_full_syncs_total", "Cache full syncs, by result (done, failed).", ["result"]
)
CACHE_FEED_POISON = Counter(
    "ledgerd_cache_feed_poison_total", "Undecodable cache feed records skipped by the updater."
)
CACHE_FEED_MESSAGES = Counter(
    "ledgerd_cache_feed_messages_total",
    "Committed balances the consumer queued on the cache feed topic.",
)
CACHE_FEED_RECORDS = Counter(
    "ledgerd_cache_feed_records_total",
    "Cache feed records the consumer queued (one per batch and partition, each holding"
    " that partition's balances).",
)
CACHE_FEED_FAILURES = Counter(
    "ledgerd_cache_feed_failures_total",
    "Balances on cache feed records not delivered (the cache's full sync repairs their entries).",
)
EVENTS_PUBLISHED = Counter(
    "ledgerd_events_published_total",
    "Journal entries published to the balance-events topic (docs/events.md).",
)
EVENTS_LAG = Gauge(
    "ledgerd_events_lag_seconds",
    "Age of the oldest journal entry not yet published to balance-events, by owned"
    " partition (0 when caught up).",
    ["partition"],
)
EVENTS_JOURNAL_READS = Counter(
    "ledgerd_events_journal_reads_total",
    "Journal reads by the events publisher: it publishes from the commits the consumer hands"
    " it and reads the journal only to catch up (a partition gained, a gap, an idle check).",
)
EVENTS_HANDOFFS_DROPPED = Counter(
    "ledgerd_events_handoffs_dropped_total",
    "Consumer commits not handed to the events publisher because its queue was full (it"
    " reads their entries from the journal instead).",
)
EVENT_TAILS_OPEN = Gauge(
    "ledgerd_event_tails_open", "TailEvents calls (gRPC and REST) reading the events topic now."
)
