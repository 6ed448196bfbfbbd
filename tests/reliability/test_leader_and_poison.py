"""Scenarios 7 and 8: leader takeover after a kill, and poison messages sent to the DLQ."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer
from harness import Deployment, ServerProcess, services, wait_until
from harness.load import Load, new_user
from reliability_support import assert_exactly_once

from ledgerd.domain.partitioning import user_key

# Processes that contend only for the outbox lock (the relay's sweep and clean-up).
RELAY_ONLY = {"api": False, "relay": True, "consumer": False, "cache_updater": False}
TTL_S, RENEW_S = 5.0, 2.0


def leader_state(process: ServerProcess) -> tuple[bool, int]:
    leads = process.metric('ledgerd_leader{lock="outbox"}') == 1
    return leads, int(process.metric('ledgerd_leader_epoch{lock="outbox"}'))


def test_leader_killed_is_replaced_within_ttl_plus_renewal(deployment: Deployment) -> None:
    """Two contenders, one leader; SIGKILL it: the other leads within TTL + renewal."""
    first = deployment.start("first", **RELAY_ONLY)
    second = deployment.start("second", **RELAY_ONLY)
    wait_until(
        lambda: leader_state(first)[0] or leader_state(second)[0],
        TTL_S + RENEW_S + 10,
        "a leader of the outbox lock",
    )
    states = {p: leader_state(p) for p in (first, second)}
    leaders = [p for p, (leads, _) in states.items() if leads]
    assert len(leaders) == 1, states
    leader = leaders[0]
    follower = second if leader is first else first
    old_epoch = states[leader][1]

    leader.kill()
    killed_at = time.monotonic()
    wait_until(lambda: leader_state(follower)[0], TTL_S + RENEW_S + 1, "takeover in time")
    takeover_s = time.monotonic() - killed_at
    assert takeover_s <= TTL_S + RENEW_S + 0.2  # 0.2 s: the metric scrape interval
    assert leader_state(follower)[1] > old_epoch


def test_poison_messages_go_to_the_dlq_and_the_partition_moves_on(deployment: Deployment) -> None:
    """Undecodable, invalid and unknown messages written into the topic land in the DLQ with
    their error; the changes after them are applied."""
    api = deployment.start("api")
    topic, dlq = deployment.env["LEDGERD_TOPIC"], deployment.env["LEDGERD_DLQ_TOPIC"]
    users = [new_user() for _ in range(10)]
    poison = [
        b"\x00\xffnot json",
        b'{"request_id":"p1","user_id":1,"currency":"usd","type":1,"amount":"1"}',
        b'{"request_id":"never-accepted","user_id":5,"currency":"USD","type":1,"amount":"1"}',
    ]
    with Load(api.target, users, clients=4) as load:
        load.wait_acknowledged(100)
        producer = Producer({"bootstrap.servers": services.kafka_bootstrap()})
        for partition, value in enumerate(poison):
            producer.produce(topic, value, user_key(users[0]), partition=partition % 3)
        assert producer.flush(10) == 0
        wait_until(
            lambda: api.metric("ledgerd_dlq_messages_total") >= len(poison),
            60,
            "the poison messages sent to the DLQ",
        )
        api.wait_applied(100)  # the partitions moved on past the poison
    assert not load.errors, load.errors
    assert_exactly_once(load, api, users)

    consumer = Consumer(
        {
            "bootstrap.servers": services.kafka_bootstrap(),
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([dlq])
    found: dict[bytes, str] = {}
    deadline = time.monotonic() + 30
    while len(found) < len(poison) and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            headers = dict(message.headers() or [])
            found[message.value() or b""] = (headers.get("error") or b"").decode()
    consumer.close()
    assert set(found) == set(poison)
    assert "undecodable" in found[poison[0]]
    assert "currency" in found[poison[1]]
    assert "no outbox request" in found[poison[2]]
    assert api.metric("ledgerd_dlq_messages_total") == len(poison)
