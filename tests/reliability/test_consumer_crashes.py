"""Scenarios 1 and 6: consumers killed mid-batch, and a paused (zombie) consumer fenced."""

from __future__ import annotations

import os
import signal

from harness import Deployment, wait_until
from harness.load import Load, new_user
from reliability_support import PARTITIONS, assert_exactly_once, wait_until_holding_a_batch

# Each batch waits this long before its commit, so a kill or pause lands mid-batch.
COMMIT_DELAY = {"fault_consumer_commit_delay_ms": "150"}


def test_consumer_killed_mid_batch_five_times(deployment_on_shards: Deployment) -> None:
    """SIGKILL the consumer process 5 times during a load; each restart resumes exactly,
    on one database and on two shards (where a batch spans both: one commit per shard)."""
    deployment = deployment_on_shards
    api = deployment.start("api", consumer=False)
    consumer = deployment.start("consumer", COMMIT_DELAY, api=False, relay=False)
    users = [new_user() for _ in range(20)]
    kills = 0
    with Load(api.target, users, clients=6) as load:
        for _ in range(5):
            load.wait_acknowledged(50)
            wait_until_holding_a_batch(consumer)
            consumer.kill()
            kills += 1
            consumer.start(timeout_s=60)
        consumer.wait_applied(100, timeout_s=120)  # the last run resumes the load
    assert kills == 5
    assert not load.errors, load.errors
    report = assert_exactly_once(load, api, users)
    if "LEDGERD_STORE_SHARDS" in api.env:  # the load reached both shards, audited each
        assert [shard["ok"] for shard in report["shards"]] == [True, True]
        assert all(shard["journal_entries"] > 0 for shard in report["shards"])


def test_zombie_consumer_is_fenced_after_its_partitions_move(deployment: Deployment) -> None:
    """SIGSTOP a consumer past the session timeout, SIGCONT it: its stale batch is fenced."""
    api = deployment.start("api", consumer=False)
    # The zombie holds each batch 2 s before committing, so the pause lands mid-batch.
    zombie = deployment.start(
        "zombie", {"fault_consumer_commit_delay_ms": "2000"}, api=False, relay=False
    )
    survivor = deployment.start("survivor", api=False, relay=False)
    users = [new_user() for _ in range(30)]
    everything = set(range(PARTITIONS))
    with Load(api.target, users, clients=4) as load:
        # Both members joined: they share the partitions.
        wait_until(
            lambda: zombie.owned_partitions() and survivor.owned_partitions(),
            60,
            "both consumers owning partitions",
        )
        fenced_before = zombie.metric("ledgerd_fenced_batches_total")
        assert zombie.process is not None
        wait_until_holding_a_batch(zombie)  # the zombie is applying its share
        os.kill(zombie.process.pid, signal.SIGSTOP)
        session_timeout_s = int(deployment.env["LEDGERD_KAFKA_SESSION_TIMEOUT_MS"]) / 1000
        wait_until(
            lambda: survivor.owned_partitions() == everything,
            session_timeout_s + 60,
            "the group moving the paused consumer's partitions to the survivor",
        )
        os.kill(zombie.process.pid, signal.SIGCONT)
        wait_until(
            lambda: zombie.metric("ledgerd_fenced_batches_total") > fenced_before,
            60,
            "the resumed consumer's stale batch fenced",
        )
        fenced_after = zombie.metric("ledgerd_fenced_batches_total")
        zombie.kill()  # its slow batches would only stretch the test from here on
        survivor.wait_applied(100)  # the survivor applies the whole load
    assert not load.errors, load.errors
    assert fenced_after > fenced_before
    assert_exactly_once(load, api, users)
