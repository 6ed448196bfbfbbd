"""Scenario 2: the API/relay process killed between acceptance and publication."""

from __future__ import annotations

import time

from harness import Deployment, wait_until
from harness.load import Load, new_user
from reliability_support import assert_exactly_once

from ledgerd.store import open_store

RELAY_HOLD = "relay.after_produce"
FIRED = "fault injection: failpoint fired"  # what ledgerd.support.failpoints logs


def unpublished_rows(store_url: str) -> int:
    """Rows without an outcome that may not be in the log (their publish group is there)."""
    store = open_store(store_url)
    try:
        return len(store.find_unsent(int(time.time() * 1000) + 1, 100_000))
    finally:
        store.close()


def test_api_and_relay_killed_with_accepted_rows_unpublished(deployment: Deployment) -> None:
    """Kill -9 the API+relay under load: rows it accepted but never published are sent
    by the next leader's sweep, and applied once."""
    # The relay holds each of its first batches a second after handing it to the producer,
    # before recording its delivery: meanwhile the acceptor goes on storing rows it has not
    # published. (Without the hold the relay may have caught up at the moment of the kill.)
    api = deployment.start("api", {"failpoints": f"{RELAY_HOLD}=5*sleep(1000)"}, consumer=False)
    deployment.start("consumer", api=False, relay=False)
    users = [new_user() for _ in range(20)]
    with Load(api.target, users, clients=8) as load:
        load.wait_acknowledged(200)
        wait_until(
            lambda: [e for e in api.log_events(FIRED) if e.get("failpoint") == RELAY_HOLD],
            60,
            "the relay holding a batch",
        )
        load.wait_acknowledged(20)  # accepted while the relay holds: not published
        api.kill()
        stranded = unpublished_rows(api.env["LEDGERD_STORE_URL"])
        api.start(timeout_s=60)
        load.wait_acknowledged(100)  # the load goes on against the new leader
    # The kill really stranded accepted rows before publication (the case under test).
    assert stranded > 0
    assert set(load.errors) <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, load.errors
    assert_exactly_once(load, api, users)
