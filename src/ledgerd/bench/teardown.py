"""What a scenario's deployment leaves on the shared backends, removed once it stopped.

Every production deployment of the bench gets topics, consumer groups, cache keys and a
database of its own (``production_env``). Left behind, they weigh on the next scenarios:
the broker keeps every partition it holds in its heap and its periodic checkpoints. With
790 leftover topics (2,381 partitions) the broker's CPU per change in change-single had a
median of 62 µs over ten runs; after deleting them, 44 over seven (issue 22's notes).
Removed after each scenario, every scenario starts from the backends the one before found.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

# Settings naming the deployment's own topics and Kafka consumer groups.
TOPIC_SETTINGS = (
    "LEDGERD_TOPIC",
    "LEDGERD_DLQ_TOPIC",
    "LEDGERD_CACHE_FEED_TOPIC",
    "LEDGERD_EVENTS_TOPIC",
)
GROUP_SETTINGS = ("LEDGERD_CONSUMER_GROUP", "LEDGERD_CACHE_UPDATER_GROUP")
KAFKA_TIMEOUT_S = 60.0
# Keys deleted per UNLINK while scanning the deployment's cache prefix.
KEYS_PER_UNLINK = 1000


def release(env: Mapping[str, str]) -> None:
    """Delete the deployment's topics and groups, cache keys and databases (each part that
    ``env`` names; an embedded deployment names none). Call once its processes stopped.

    A part that cannot be removed is reported on stderr and left: the figures are already
    taken, and ``scripts/services prune`` removes what is left later."""
    for part, remove in (("kafka", _release_kafka), ("redis", _release_redis),
                         ("mariadb", _release_databases)):  # fmt: skip
        try:
            remove(env)
        except Exception as exc:  # any failure: say so, go on
            sys.stderr.write(f"  warning: the scenario's {part} state stays: {exc}\n")


def _release_kafka(env: Mapping[str, str]) -> None:
    url = env.get("LEDGERD_LOG_URL", "")
    if not url.startswith("kafka://"):
        return
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": url.removeprefix("kafka://")})
    topics = [env[name] for name in TOPIC_SETTINGS if env.get(name)]
    existing = set(admin.list_topics(timeout=KAFKA_TIMEOUT_S).topics)
    doomed = [topic for topic in topics if topic in existing]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=KAFKA_TIMEOUT_S).values():
            future.result()
    groups = [env[name] for name in GROUP_SETTINGS if env.get(name)]
    if groups:
        for future in admin.delete_consumer_groups(
            groups, request_timeout=KAFKA_TIMEOUT_S
        ).values():
            try:
                future.result()
            except KafkaException as exc:
                # A group that never committed an offset (a role that was off) is unknown.
                if "GROUP_ID_NOT_FOUND" not in str(exc):
                    raise


def _release_redis(env: Mapping[str, str]) -> None:
    url, prefix = env.get("LEDGERD_CACHE_URL", ""), env.get("LEDGERD_CACHE_KEY_PREFIX", "")
    if not url.startswith("redis://") or not prefix:
        return
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=KEYS_PER_UNLINK):
            batch.append(key)
            if len(batch) >= KEYS_PER_UNLINK:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


def _release_databases(env: Mapping[str, str]) -> None:
    named = [*env.get("LEDGERD_STORE_SHARDS", "").split(","), env.get("LEDGERD_STORE_URL", "")]
    urls = [url for url in named if url.startswith("mysql://")]
    if not urls:
        return
    import MySQLdb

    from ledgerd.store.mysql import MysqlUrl

    for url in urls:
        parsed = MysqlUrl.parse(url)
        connection: Any = MySQLdb.connect(
            host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password
        )
        try:
            connection.cursor().execute(f"DROP DATABASE IF EXISTS `{parsed.database}`")
        finally:
            connection.close()
