"""`scripts/services prune`: the Kafka topics, Redis keys and databases tests and benchmarks
left behind go, the rest stays. Kafka on a second broker of the script's own (its state in a
temporary directory, on free ports), since pruning the shared one would race every other
test's topics; Redis and MariaDB on the shared servers, in a namespace of the test's own."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic
from harness import REPO_ROOT, free_port, wait_for, wait_until
from harness import services as shared_services

from ledgerd.store.mysql import MysqlUrl

SCRIPT = str(REPO_ROOT / "scripts" / "services")
TWO_HOURS_S = 2 * 3600


def shared_kafka_libs() -> Path:
    """The jars ``scripts/services up kafka`` fetched for the shared broker (in the checkout
    LEDGERD_TEST_SERVICES names, as for restarts): linked, so nothing is fetched again."""
    script = os.environ.get("LEDGERD_TEST_SERVICES")
    root = Path(script).resolve().parents[1] if script else REPO_ROOT
    return root / ".services" / "kafka" / "libs"


@pytest.fixture
def services_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "libs").symlink_to(shared_kafka_libs())
    env = {
        **os.environ,
        "LEDGERD_SERVICES_STATE": str(tmp_path),
        "LEDGERD_SERVICES_KAFKA_PORT": str(free_port()),
        "LEDGERD_SERVICES_KAFKA_CONTROLLER_PORT": str(free_port()),
    }
    try:
        yield env
    finally:
        subprocess.run(
            [SCRIPT, "down", "kafka"], env=env, capture_output=True, timeout=120, check=False
        )


def services(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [SCRIPT, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.slow  # a broker of its own: two JVM starts
def test_prune_deletes_idle_tagged_topics_and_keeps_the_rest(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    """A tagged topic idle for an hour goes; a tagged topic written to lately, and an
    untagged one however idle, stay."""
    services(services_env, "up", "kafka")
    bootstrap = f"127.0.0.1:{services_env['LEDGERD_SERVICES_KAFKA_PORT']}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    idle_tagged = [
        "balance-changes-0123abcd45",
        "contract-89abcdef0123-1",
        "never-skip-a1b2c3d4-dlq",
    ]
    fresh_tagged, untagged = "balance-events-fedcba9876", "balance-changes"
    names = [*idle_tagged, fresh_tagged, untagged]
    for created in admin.create_topics([NewTopic(name, 3, 1) for name in names]).values():
        created.result(timeout=30)
    data = tmp_path / "kafka" / "data"

    def segments() -> list[Path]:
        """The first segment of each partition of the topics above, once all are there."""
        found = [p for p in data.glob("*-[0-9]/*.log") if topic_of(p) in names]
        return found if len(found) == 3 * len(names) else []

    # The broker makes a partition's directory and first segment once it learns of the topic.
    idle = time.time() - TWO_HOURS_S
    for segment in wait_until(segments, 30, "every partition's first segment"):
        if topic_of(segment) in [*idle_tagged, untagged]:
            os.utime(segment, (idle, idle))

    said = services(services_env, "prune")

    assert f"deleting {len(idle_tagged)} test topics idle for 60 min" in said
    left = wait_for(
        lambda: {t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")},
        {fresh_tagged, untagged},
        30,
        "only the fresh tagged topic and the untagged one left",
    )
    assert left == {fresh_tagged, untagged}
    assert "no test topics idle" in services(services_env, "prune")  # nothing more to do


def topic_of(segment: Path) -> str:
    return segment.parent.name.rsplit("-", 1)[0]  # the directory is TOPIC-PARTITION


def test_prune_drops_idle_test_databases_and_redis_keys_and_keeps_the_rest() -> None:
    """Databases named like a test's and Redis keys under a test's prefix go once idle for
    MINUTES; fresh ones stay at 60, and other names stay whatever MINUTES says."""
    tag = uuid.uuid4().hex[:10]
    namespace = {
        **os.environ,
        "LEDGERD_SERVICES_PRUNE_DB_PREFIX": f"ledgerd_pt{tag}_",
        "LEDGERD_SERVICES_PRUNE_KEY_PATTERN": f"ledgerd-pt{tag}-*",
    }
    pruned_db, other_db = f"ledgerd_pt{tag}_a", f"ledgerd_po{tag}_b"
    pruned_keys = [f"ledgerd-pt{tag}-x:balance:{i}:USD" for i in range(3)]
    other_key = f"ledgerd-po{tag}-x:balance:1:USD"
    cache = redis.Redis.from_url(shared_services.redis_url())  # where servers leave keys
    server = MysqlUrl.parse(
        os.environ.get("LEDGERD_TEST_MYSQL_URL", "mysql://ledgerd:ledgerd@127.0.0.1:3306") + "/x"
    )
    db = MySQLdb.connect(
        host=server.host, port=server.port, user=server.user, password=server.password
    )
    try:
        for name in (pruned_db, other_db):
            db.cursor().execute(f"CREATE DATABASE `{name}`")
            db.cursor().execute(f"CREATE TABLE `{name}`.t (i INT)")
        for key in [*pruned_keys, other_key]:
            cache.set(key, "1")

        said = services(namespace, "prune", "60", "redis", "mariadb")
        assert databases(db, tag) == {pruned_db, other_db}, said  # all fresh
        assert cache.exists(*pruned_keys, other_key) == 4, said

        said = services(namespace, "prune", "0", "redis", "mariadb")

        assert "dropping 1 test databases idle for 0 min" in said
        assert "deleting the keys of 1 test prefixes unused for 0 min" in said
        assert databases(db, tag) == {other_db}, said
        assert cache.exists(*pruned_keys) == 0, said
        assert cache.exists(other_key) == 1, said
    finally:
        for name in (pruned_db, other_db):
            db.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        db.close()
        cache.delete(*pruned_keys, other_key)
        cache.close()


def databases(db: MySQLdb.Connection, tag: str) -> set[str]:
    cursor = db.cursor()
    cursor.execute(f"SHOW DATABASES LIKE 'ledgerd_p_{tag}%'")
    return {row[0] for row in cursor.fetchall()}
