"""``ledgerd audit``: the store's invariants, checked by an operator or a periodic job.

``check`` scans a store (or each shard) and reports what breaks; ``money`` and
``transfers`` are the whole-store checks it runs (conservation per currency, the legs of
every transfer); ``job`` is the leader's periodic audit exporting the report as metrics.
The job is not imported here, so an operator's ``ledgerd audit`` loads no metrics or
server pieces.
"""

from ledgerd.audit.check import (
    DEFAULT_MAX_IN_FLIGHT_S,
    AuditReport,
    Progress,
    ShardAudit,
    audit,
    audit_shards,
)

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT_S",
    "AuditReport",
    "Progress",
    "ShardAudit",
    "audit",
    "audit_shards",
]
