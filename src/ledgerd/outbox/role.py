"""The relay role's components: the relay (publishes accepted rows; sweeps the outbox
while this process holds the outbox lock) and, with the relay role, the audit job."""

from __future__ import annotations

from ledgerd.audit.job import AuditJob
from ledgerd.outbox.expiry import HoldExpirySweep
from ledgerd.outbox.relay import PUBLISH_LINGER_MS, Relay
from ledgerd.runtime.leader import OUTBOX_LOCK
from ledgerd.runtime.supervisor import Child
from ledgerd.wiring.parts import Parts


def declare_audit(parts: Parts) -> None:
    """The periodic audit, run by whichever relay-role process holds the outbox lock."""
    settings = parts.settings
    leader = parts.elector(OUTBOX_LOCK)
    auditor = AuditJob(
        parts.backends.store,
        leader.is_leader,
        settings.audit_interval_s,
        settings.audit_max_in_flight_s,
    )
    parts.supervisor.add(Child(auditor.name, thread=auditor.run, has_work=auditor.has_work))


def declare_relay(parts: Parts) -> None:
    """The relay: publishes this process's accepted rows at once (API role) and, with the
    relay role, sweeps the outbox while it holds the outbox lock; offered to the API and
    the consumer, which hand it rows."""
    settings = parts.settings
    leader = parts.elector(OUTBOX_LOCK) if settings.start_relay else None
    relay = Relay(
        parts.backends.store,
        parts.backends.event_log.producer(linger_ms=PUBLISH_LINGER_MS),
        parts.signer,
        topic=settings.topic,
        partition_count=settings.partitions,
        batch_max_messages=settings.relay_batch_max_messages,
        sweep_interval_s=settings.relay_sweep_interval_s,
        sweep_min_age_s=settings.relay_sweep_min_age_s,
        retry_base_ms=settings.relay_retry_base_ms,
        retry_max_ms=settings.relay_retry_max_ms,
        unfinished_warn_s=settings.unfinished_warn_s,
        may_sweep=leader.is_leader if leader is not None else (lambda: False),
        outbox_lock=(lambda: leader.token) if leader is not None else (lambda: None),
    )
    parts.supervisor.add(Child("relay", thread=relay.run, has_work=relay.has_work, wake=relay.wake))
    parts.offer(relay)


def declare_hold_expiry(parts: Parts) -> None:
    """The hold expiry sweep, run by whichever relay-role process holds the outbox lock; it
    hands what it accepts to this process's relay (declared before it)."""
    settings = parts.settings
    leader = parts.elector(OUTBOX_LOCK)
    relay = parts.find(Relay)
    sweep = HoldExpirySweep(
        parts.backends.store,
        leader.is_leader,
        settings.hold_sweep_interval_s,
        hand_off=relay.hand_off if relay is not None else None,
        batch_max=settings.hold_sweep_batch_max,
    )
    parts.supervisor.add(Child(sweep.name, thread=sweep.run, has_work=sweep.has_work))
