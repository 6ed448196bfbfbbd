"""The audit of a server's store, run in the test process.

``ledgerd audit --json`` as a subprocess costs about two seconds, most of it imports;
the harness polls audits (``wait_settled``) and checks them before and after requests,
so it calls the audit library on the server's stores directly instead. The report is
the same JSON document the CLI prints (e2e/test_bad_input.py holds the two equal); tests
whose subject is the CLI still run it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from ledgerd.audit import DEFAULT_MAX_IN_FLIGHT_S, audit, audit_shards
from ledgerd.domain.partitioning import shard_for_user
from ledgerd.settings import Settings, store_location
from ledgerd.store import open_store
from ledgerd.store.sql.core import SqlStore


def store_urls(env: Mapping[str, str]) -> list[str]:
    """The store URL of each shard of a server's settings, as ``Settings.store_urls``
    reads them (LEDGERD_STORE_SHARDS, else LEDGERD_STORE_URL, else SQLite in the data
    directory)."""
    shards = env.get("LEDGERD_STORE_SHARDS")
    if shards:
        return shards.split(",")
    url = env.get("LEDGERD_STORE_URL")
    return [url or f"sqlite:///{Path(env['LEDGERD_DATA_DIR']) / 'ledgerd.sqlite'}"]


def audit_json(env: Mapping[str, str]) -> dict[str, Any]:
    """What ``ledgerd audit --json`` prints for a server with settings ``env``."""
    max_in_flight_s = float(env.get("LEDGERD_AUDIT_MAX_IN_FLIGHT_S", DEFAULT_MAX_IN_FLIGHT_S))
    urls = store_urls(env)
    stores: list[SqlStore] = [open_store(url) for url in urls]
    try:
        if len(stores) == 1:
            return audit(stores[0], max_in_flight_s=max_in_flight_s).as_json()
        partitions = int(env.get("LEDGERD_PARTITIONS", Settings.model_fields["partitions"].default))
        where = [store_location(url) for url in urls]
        shards, total = audit_shards(
            list(zip(where, stores, strict=True)),
            partial(_shard_of_user, partitions, len(stores)),
            max_in_flight_s=max_in_flight_s,
        )
        document = total.as_json()
        document["shards"] = [
            {"shard_id": s.shard_id, "where": s.where, **s.report.as_json()} for s in shards
        ]
        return document
    finally:
        for store in stores:
            store.close()


def _shard_of_user(partition_count: int, shard_count: int, user_id: int) -> int:
    return shard_for_user(user_id, partition_count, shard_count)
