"""The bench removes what a scenario's deployment left on the real backends once its servers
stopped (``ledgerd.bench.teardown.release``): its topics, consumer groups, cache keys and
databases go; another deployment's stay."""

from __future__ import annotations

from typing import Any

import MySQLdb
import redis
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from ledgerd.bench.teardown import GROUP_SETTINGS, TOPIC_SETTINGS, release
from ledgerd.launch.serve_process import production_env, services
from ledgerd.log.kafka import KafkaLog
from ledgerd.store import open_store
from ledgerd.store.mysql import MysqlUrl


def leave_state(env: dict[str, str]) -> None:
    """What a scenario's servers leave: topics, a committed offset per group, cache keys and
    migrated databases."""
    log = KafkaLog(services.kafka_bootstrap(), partition_count=1)
    try:
        log.ensure_topics([env[name] for name in TOPIC_SETTINGS])
    finally:
        log.close()
    for name in GROUP_SETTINGS:
        consumer = Consumer(
            {"bootstrap.servers": services.kafka_bootstrap(), "group.id": env[name]}
        )
        try:
            consumer.commit(
                offsets=[TopicPartition(env["LEDGERD_TOPIC"], 0, 0)], asynchronous=False
            )
        finally:
            consumer.close()
    cache = redis.Redis.from_url(env["LEDGERD_CACHE_URL"])
    cache.mset({f"{env['LEDGERD_CACHE_KEY_PREFIX']}balance:{n}": b"1" for n in range(3)})
    cache.close()
    for url in env["LEDGERD_STORE_SHARDS"].split(","):
        store = open_store(url)
        store.migrate()
        store.close()


def databases(env: dict[str, str]) -> set[str]:
    found = set()
    for url in env["LEDGERD_STORE_SHARDS"].split(","):
        parsed = MysqlUrl.parse(url)
        connection: Any = MySQLdb.connect(
            host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password
        )
        cursor = connection.cursor()
        cursor.execute("SHOW DATABASES LIKE %s", [parsed.database])
        found.update(row[0] for row in cursor.fetchall())
        connection.close()
    return found


def state_of(env: dict[str, str]) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap()})
    topics = set(admin.list_topics(timeout=30).topics)
    groups = {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}
    cache = redis.Redis.from_url(env["LEDGERD_CACHE_URL"])
    keys = list(cache.scan_iter(match=f"{env['LEDGERD_CACHE_KEY_PREFIX']}*"))
    cache.close()
    return {
        "topics": {env[name] for name in TOPIC_SETTINGS} & topics,
        "groups": {env[name] for name in GROUP_SETTINGS} & groups,
        "keys": len(keys),
        "databases": databases(env),
    }


def test_release_removes_the_deployments_state_and_only_its_own() -> None:
    gone, kept = production_env(shards=2), production_env(shards=2)
    leave_state(gone)
    leave_state(kept)
    try:
        before = state_of(gone)
        assert len(before["topics"]) == len(TOPIC_SETTINGS)
        assert len(before["groups"]) == len(GROUP_SETTINGS)
        assert before["keys"] == 3 and len(before["databases"]) == 2
        release(gone)
        assert state_of(gone) == {"topics": set(), "groups": set(), "keys": 0, "databases": set()}
        assert state_of(kept) == {
            "topics": {kept[name] for name in TOPIC_SETTINGS},
            "groups": {kept[name] for name in GROUP_SETTINGS},
            "keys": 3,
            "databases": databases(kept),
        }
        assert len(databases(kept)) == 2
    finally:
        release(kept)
