"""The shard map: which database holds which partition, and checking each database agrees.

Partition ``p`` lives in shard ``p mod shard_count`` (``ledgerd.domain.partitioning``).
Every database records its own place (shard id, shard count, partition count) at
``migrate``. Before anything is written, every shard is read: a process whose
configuration disagrees with a record (the list reordered, a count changed), or
that finds some shards recorded and others not (a new or mistyped database among
known ones), refuses to start and names the shard. Only a deployment where no
shard has a record yet (new, or upgraded from before shards) records them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledgerd.errors import ShardMismatch, StoreUnavailable
from ledgerd.settings import store_location
from ledgerd.store.base import ShardIdentity
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.migrate import SchemaChange


@dataclass(frozen=True, slots=True)
class Shard:
    """One database of the shard map: its id, where it is, and its store."""

    shard_id: int
    url: str
    store: SqlStore

    @property
    def where(self) -> str:
        return store_location(self.url)


def configured_identity(shard_id: int, shard_count: int, partition_count: int) -> ShardIdentity:
    return ShardIdentity(shard_id, shard_count, partition_count)


def read_identities(shards: Sequence[Shard]) -> list[ShardIdentity | None]:
    """Each shard's recorded place (None: none recorded).

    Raises:
        StoreUnavailable: a shard cannot be reached; the message names it.
    """
    found: list[ShardIdentity | None] = []
    for shard in shards:
        try:
            found.append(shard.store.shard_identity())
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"shard {shard.shard_id} ({shard.where}) cannot be reached: {exc}"
            ) from exc
    return found


def check_shards(shards: Sequence[Shard], partition_count: int) -> list[ShardIdentity | None]:
    """Refuse a configuration that disagrees with what the shards recorded; writes nothing.

    Returns each shard's record (all None for a deployment never migrated with shards).

    Raises:
        ShardMismatch: a shard records another place, or has no record while others do.
        StoreUnavailable: a shard cannot be reached.
    """
    recorded = read_identities(shards)
    for shard, identity in zip(shards, recorded, strict=True):
        expected = configured_identity(shard.shard_id, len(shards), partition_count)
        if identity is not None and identity != expected:
            raise ShardMismatch(
                shard.shard_id,
                shard.where,
                "; ".join(identity.differences(expected))
                + " (LEDGERD_STORE_SHARDS lists the shards in another order, or"
                " LEDGERD_PARTITIONS or the number of shards changed; docs/scaling.md"
                " says how to move partitions)",
            )
    if any(identity is not None for identity in recorded):
        for shard, identity in zip(shards, recorded, strict=True):
            if identity is None:
                known = next(i for i, found in enumerate(recorded) if found is not None)
                raise ShardMismatch(
                    shard.shard_id,
                    shard.where,
                    f"records no place in the shard map while shard {known} does: a new or"
                    " mistyped database among known ones (run `ledgerd migrate` only on a"
                    " new deployment; docs/scaling.md says how to add a shard)",
                )
    return recorded


def prepare_shards(shards: Sequence[Shard], partition_count: int) -> list[SchemaChange]:
    """Check every shard, then migrate each and record its place where none is; returns
    each shard's schema version before and after.

    Raises:
        ShardMismatch, StoreUnavailable: as ``check_shards``; nothing was written.
        SchemaTooNew: a shard was migrated by a newer ledgerd.
    """
    recorded = check_shards(shards, partition_count)
    changes: list[SchemaChange] = []
    for shard, identity in zip(shards, recorded, strict=True):
        try:
            before = shard.store.schema_version()
            shard.store.migrate()
            changes.append(SchemaChange(before, shard.store.schema_version()))
            if identity is None:
                expected = configured_identity(shard.shard_id, len(shards), partition_count)
                now = shard.store.record_shard_identity(expected)
                if now != expected:  # another process recorded another map meanwhile
                    raise ShardMismatch(
                        shard.shard_id, shard.where, "; ".join(now.differences(expected))
                    )
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"shard {shard.shard_id} ({shard.where}) cannot be reached: {exc}"
            ) from exc
    return changes
