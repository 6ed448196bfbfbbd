"""`ledgerd audit` and `ledgerd shards` on two real MariaDB shards: per shard and in total,
rows placed in the wrong shard and a request decided in two shards reported."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from harness import drop_database, fresh_shard_urls, ledgerd_command
from test_audit_on_stores import SOURCE, Consumer, deposit, transfer
from test_sharded_store import USER_P0, USER_P1, commit_one_each
from test_store_contract import request

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeType, JournalEntry, Rejection, RejectReason
from ledgerd.store.base import BatchCommit
from ledgerd.store.mysql import MysqlStore
from ledgerd.store.sharded import ShardedStore
from ledgerd.store.shards import Shard, prepare_shards

PARTITIONS = 3


@pytest.fixture
def urls() -> Iterator[list[str]]:
    made = fresh_shard_urls(2)
    shards = [Shard(i, url, MysqlStore(url)) for i, url in enumerate(made)]
    prepare_shards(shards, PARTITIONS)
    for shard in shards:
        shard.store.close()
    yield made
    for url in made:
        drop_database(url)


@pytest.fixture
def sharded(urls: list[str]) -> Iterator[ShardedStore]:
    store = ShardedStore([MysqlStore(url) for url in urls], PARTITIONS)
    yield store
    store.close()


def ledgerd(urls: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGERD_STORE_SHARDS": ",".join(urls), "LEDGERD_PARTITIONS": "3"}
    return subprocess.run(
        ledgerd_command(*args), env=env, capture_output=True, text=True, check=False
    )


def test_audit_reports_each_shard_and_the_total(urls: list[str], sharded: ShardedStore) -> None:
    commit_one_each(sharded)  # users of partitions 0 and 2 in shard 0, of partition 1 in shard 1
    done = ledgerd(urls, "audit", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [s["shard_id"] for s in report["shards"]] == [0, 1]
    assert [s["accounts"] for s in report["shards"]] == [2, 1]
    assert [s["requests"]["REJECTED"] for s in report["shards"]] == [0, 1]
    assert (report["ok"], report["accounts"], report["journal_entries"]) == (True, 3, 3)
    assert report["requests"] == {"APPLIED": 3, "REJECTED": 1}
    text = ledgerd(urls, "audit")
    assert text.returncode == 0
    assert "shard 1 (" in text.stdout and "total over 2 shards:" in text.stdout


def test_audit_finds_rows_in_the_wrong_shard(urls: list[str], sharded: ShardedStore) -> None:
    one = sharded.shards[1]
    # an entry of partition 0's user written into shard 1 (as a wrong shard list would):
    # its journal entry and so its balance are out of place
    entry = JournalEntry("w1", USER_P0, "USD", ChangeType.DEPOSIT, SCALE, SCALE, 0, 1, 5000)
    one.commit_batch(BatchCommit([], [entry], [], 5000))
    done = ledgerd(urls, "audit", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    expected = f"user {USER_P0}: journal entries in a shard that does not own its partition"
    assert expected in report["shards"][1]["problems"]
    assert f"shard 1: {expected}" in report["problems"]
    assert report["shards"][0]["ok"]


def test_audit_finds_a_request_decided_in_two_shards(
    urls: list[str], sharded: ShardedStore
) -> None:
    """Concurrent first uses of one request_id for users of two shards (which the store
    does not prevent) show up in the total."""
    zero, one = sharded.shards
    for shard, user in ((zero, USER_P0), (one, USER_P1)):
        rejected = Rejection(request(7, user=user), RejectReason.INSUFFICIENT_AVAILABLE)
        shard.commit_batch(BatchCommit([], [], [rejected], 5000))
    report = json.loads(ledgerd(urls, "audit", "--json").stdout)
    assert report["shards"][0]["ok"] and report["shards"][1]["ok"]
    assert report["problems"] == ["request r7: outcomes in shards 0 and 1"]


def test_audit_checks_money_and_transfers_over_all_shards(
    urls: list[str], sharded: ShardedStore
) -> None:
    """A transfer debited in shard 0 and never credited in shard 1: in flight in the
    total (where its legs meet), stuck past --max-in-flight-s; each shard alone says
    nothing of money."""
    consumer = Consumer(sharded)
    consumer.apply(deposit("d1", SOURCE, 100))
    consumer.apply(transfer("T", 10))  # applied at 1970-01-01T00:16:40Z: long ago
    done = ledgerd(urls, "audit", "--json", "--max-in-flight-s", "1e12")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["transfers"] == {
        "count": 1, "in_flight": 1, "in_flight_amounts": {"USD": "10"}, "stuck": 0
    }  # fmt: skip
    assert report["money"]["USD"]["balances"] == "90"
    assert report["money"]["USD"]["in_flight"] == "10"
    assert all("transfers" not in s and "money" not in s for s in report["shards"])
    stuck = ledgerd(urls, "audit", "--json")  # the default threshold, 300 s
    assert stuck.returncode == 1
    (problem,) = json.loads(stuck.stdout)["problems"]
    assert problem.startswith("transfer T: in flight for ")
    text = ledgerd(urls, "audit", "--max-in-flight-s", "1e12").stdout
    assert "transfers in flight" in text and "in flight USD" in text


def test_shards_prints_the_map_and_rows(urls: list[str], sharded: ShardedStore) -> None:
    commit_one_each(sharded)
    done = ledgerd(urls, "shards", "--json")
    assert done.returncode == 0, done.stderr
    shard_map = json.loads(done.stdout)
    assert shard_map["shard_of_partition"] == {"0": 0, "1": 1, "2": 0}
    assert [s["partitions"] for s in shard_map["shards"]] == [[0, 2], [1]]
    assert [s["state"] for s in shard_map["shards"]] == ["ok", "ok"]
    assert [s["rows"]["balances"] for s in shard_map["shards"]] == [2, 1]
    assert [s["rows"]["partition_offsets"] for s in shard_map["shards"]] == [2, 1]
    text = ledgerd(urls, "shards").stdout
    assert text.startswith("3 partitions on 2 shard(s): partition p in shard p mod 2\n")
    reordered = ledgerd(list(reversed(urls)), "shards")
    assert reordered.returncode == 1
    assert "shard_id is 1 here but 0 in the configuration" in reordered.stdout
