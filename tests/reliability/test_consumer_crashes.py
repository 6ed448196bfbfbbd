"""Scenarios 1 and 6: consumers killed mid-batch, and a paused (zombie) consumer fenced."""

from __future__ import annotations

import os
import signal
import time

from harness import Deployment, ServerProcess
from harness.load import Load, new_user
from reliability_support import SESSION_TIMEOUT_MS, assert_exactly_once

HOLDING = "fault injection: holding batch before commit"
# Each batch waits this long before its commit, so a kill or pause lands mid-batch.
COMMIT_DELAY = {"fault_consumer_commit_delay_ms": "150"}


def test_consumer_killed_mid_batch_five_times(deployment: Deployment) -> None:
    """SIGKILL the consumer process 5 times during a load; each restart resumes exactly."""
    api = deployment.start("api", consumer=False)
    consumer = deployment.start("consumer", COMMIT_DELAY, api=False, relay=False)
    users = [new_user() for _ in range(20)]
    kills = 0
    with Load(api.target, users, clients=6) as load:
        for _ in range(5):
            time.sleep(1.5)
            consumer.kill()
            kills += 1
            consumer.start(timeout_s=60)
        time.sleep(2)
    assert kills == 5
    assert not load.errors, load.errors
    assert_exactly_once(load, api, users)


def wait_until_holding_a_batch(process: ServerProcess, timeout_s: float = 30.0) -> None:
    """Return just after the process logs that it holds a decided batch (2 s before commit)."""
    seen = process.log_tail(100_000).count(HOLDING)
    deadline = time.monotonic() + timeout_s
    while process.log_tail(100_000).count(HOLDING) == seen:
        assert time.monotonic() < deadline, "the consumer never held a batch"
        time.sleep(0.02)


def test_zombie_consumer_is_fenced_after_its_partitions_move(deployment: Deployment) -> None:
    """SIGSTOP a consumer past the session timeout, SIGCONT it: its stale batch is fenced."""
    api = deployment.start("api", consumer=False)
    # The zombie holds each batch 2 s before committing, so the pause lands mid-batch.
    zombie = deployment.start(
        "zombie", {"fault_consumer_commit_delay_ms": "2000"}, api=False, relay=False
    )
    deployment.start("survivor", api=False, relay=False)
    users = [new_user() for _ in range(30)]
    with Load(api.target, users, clients=4) as load:
        time.sleep(5)  # both members joined and the zombie is applying its share
        fenced_before = zombie.metric("ledgerd_fenced_batches_total")
        assert zombie.process is not None
        wait_until_holding_a_batch(zombie)
        os.kill(zombie.process.pid, signal.SIGSTOP)
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 4)  # the group moves its partitions away
        os.kill(zombie.process.pid, signal.SIGCONT)
        time.sleep(3)
        fenced_after = zombie.metric("ledgerd_fenced_batches_total")
        zombie.kill()  # its slow batches would only stretch the test from here on
        time.sleep(2)
    assert not load.errors, load.errors
    assert fenced_after > fenced_before
    assert_exactly_once(load, api, users)
