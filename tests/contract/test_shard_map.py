"""The shard map on two real MariaDB servers: `migrate` records each database's place,
and a configuration that disagrees with a record is refused before anything is written."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import drop_database, fresh_shard_urls, ledgerd_command

from ledgerd.errors import ShardMismatch, StoreUnavailable
from ledgerd.store import open_store
from ledgerd.store.base import ShardIdentity
from ledgerd.store.shards import Shard, check_shards, prepare_shards
from ledgerd.store.sql.schema import LATEST_VERSION

PARTITIONS = 4


@pytest.fixture
def urls() -> Iterator[list[str]]:
    """Two new databases: shard 0 on the first MariaDB (3306), shard 1 on the second (3307)."""
    made = fresh_shard_urls(2)
    yield made
    for url in made:
        drop_database(url)


def shards_of(urls: list[str]) -> list[Shard]:
    return [Shard(i, url, open_store(url, connect_timeout_s=3)) for i, url in enumerate(urls)]


def prepared(urls: list[str], partitions: int = PARTITIONS) -> None:
    shards = shards_of(urls)
    try:
        prepare_shards(shards, partitions)
    finally:
        for shard in shards:
            shard.store.close()


def identities(urls: list[str]) -> list[ShardIdentity | None]:
    found = []
    for url in urls:
        store = open_store(url)
        found.append(store.shard_identity())
        store.close()
    return found


def test_migrate_records_each_shard_s_place(urls: list[str]) -> None:
    prepared(urls)
    assert identities(urls) == [ShardIdentity(0, 2, 4), ShardIdentity(1, 2, 4)]
    prepared(urls)  # again, as every start does: nothing changes
    assert identities(urls) == [ShardIdentity(0, 2, 4), ShardIdentity(1, 2, 4)]


def test_a_reordered_shard_list_is_refused_naming_the_shard(urls: list[str]) -> None:
    prepared(urls)
    with pytest.raises(ShardMismatch) as refused:
        prepared(list(reversed(urls)))
    message = str(refused.value)
    assert message.startswith(f"shard 0 ({urls[1].rsplit('@')[1]}): ")
    assert "shard_id is 1 here but 0 in the configuration" in message


def test_a_changed_partition_or_shard_count_is_refused(urls: list[str]) -> None:
    prepared(urls)
    with pytest.raises(ShardMismatch, match="partition_count is 4 here but 8"):
        prepared(urls, partitions=8)
    with pytest.raises(ShardMismatch, match=r"shard 0 .*shard_count is 2 here but 1"):
        prepared(urls[:1])


def test_an_unrecorded_database_among_recorded_ones_is_refused_untouched(
    urls: list[str],
) -> None:
    prepared(urls)
    mistyped = urls[1] + "_typo"
    with pytest.raises(ShardMismatch, match=r"shard 1 .*records no place in the shard map"):
        prepared([urls[0], mistyped])
    store = open_store(mistyped)
    assert store.schema_version() == 0  # never migrated: nothing written there
    store.close()


def test_an_unreachable_shard_is_named(urls: list[str]) -> None:
    dead = "mysql://ledgerd:ledgerd@127.0.0.1:1/ledgerd"  # nothing listens on port 1
    named = r"shard 1 \(127.0.0.1:1/ledgerd\) cannot be reached"
    with pytest.raises(StoreUnavailable, match=named):
        prepared([urls[0], dead])
    assert identities(urls[:1]) == [None]  # refused before shard 0 was written


def test_check_alone_writes_nothing(urls: list[str]) -> None:
    shards = shards_of(urls)
    assert check_shards(shards, PARTITIONS) == [None, None]
    for shard in shards:
        assert shard.store.schema_version() == 0
        shard.store.close()


def test_a_single_sqlite_store_records_shard_zero_of_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.sqlite'}"
    prepared([url], partitions=3)
    assert identities([url]) == [ShardIdentity(0, 1, 3)]
    with pytest.raises(ShardMismatch, match="partition_count is 3 here but 5"):
        prepared([url], partitions=5)


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ledgerd_command("migrate"), env=env, capture_output=True, text=True, check=False
    )


def test_ledgerd_migrate_reports_each_shard_and_refuses_a_reorder(
    urls: list[str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LEDGERD_STORE_SHARDS": ",".join(urls),
        "LEDGERD_PARTITIONS": "4",
        # migrate creates the topics too: in a log of this test's own, not the shared Kafka.
        "LEDGERD_LOG_URL": "embedded:",
        "LEDGERD_DATA_DIR": str(tmp_path),
    }
    done = run_migrate(env)
    assert done.returncode == 0, done.stderr
    where = [url.rsplit("@")[1] for url in urls]
    assert done.stdout.splitlines() == [
        f"shard 0 of 2: schema version 0 -> {LATEST_VERSION}: {where[0]}",
        f"shard 1 of 2: schema version 0 -> {LATEST_VERSION}: {where[1]}",
        "topics balance-changes, balance-changes-dlq, balance-events: ready",
    ]
    env["LEDGERD_STORE_SHARDS"] = ",".join(reversed(urls))
    refused = run_migrate(env)
    assert refused.returncode == 1
    assert f"ShardMismatch: shard 0 ({where[1]}): shard_id is 1 here" in refused.stderr
