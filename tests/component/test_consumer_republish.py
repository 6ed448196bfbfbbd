"""The caches never stay behind a commit whose publish was lost (issue: gaps in the cache
feed). A batch can commit without its balances reaching the caches: the process dies (or
errs) between the commit and the publish, or a commit reported as failed happened after
all and its retry changes nothing. The consumer publishes such balances again, raising
cache entries only; before, they stayed stale until the cache's periodic full sync.
"""

from __future__ import annotations

from typing import Any

import pytest
from component_support import Rig

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeType
from ledgerd.errors import StoreUnavailable
from ledgerd.store.base import BatchCommit
from ledgerd.support import failpoints
from ledgerd.support.failpoints import FailpointError

ACCOUNT = Account(11, "USD")


def accept_deposit(rig: Rig, request_id: str) -> None:
    rig.accept([ChangeRequest(request_id, ACCOUNT.user_id, "USD", ChangeType.DEPOSIT, SCALE)])
    rig.relay(sweep_min_age_s=0.0).run_until_idle()


class CommitThenFailOnce:
    """The rig's store, whose next commit happens and is then reported as failed (a
    connection lost at COMMIT)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.armed = True

    def commit_batch(self, batch: BatchCommit) -> None:
        self._store.commit_batch(batch)
        if self.armed:
            self.armed = False
            raise StoreUnavailable("connection lost at COMMIT (test)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(autouse=True)
def no_failpoints() -> Any:
    yield
    failpoints.configure("")


def test_a_partition_claimed_after_a_lost_publish_republishes_its_last_balances(
    rig: Rig,
) -> None:
    """The first consumer commits and dies before publishing (consumer.after_commit); the next
    one to claim the partition raises the cache to the committed version."""
    rig.cache.put_many([Balance(ACCOUNT.user_id, "USD")], create=True)  # cached: version 0
    accept_deposit(rig, "d-1")
    failpoints.configure("consumer.after_commit=1*error")
    first = rig.consumer()
    with pytest.raises(FailpointError):
        first.run_until_idle()
    first.close()
    assert rig.store.load_balances([ACCOUNT])[ACCOUNT].version == 1
    assert rig.cache.get(ACCOUNT) == Balance(ACCOUNT.user_id, "USD")  # the publish was lost
    second = rig.consumer()
    second.run_until_idle()
    second.close()
    assert rig.cache.get(ACCOUNT) == Balance(ACCOUNT.user_id, "USD", SCALE, 0, 1)


def test_a_retried_commit_that_had_happened_publishes_the_current_balances(rig: Rig) -> None:
    """A commit reported failed that did commit: the retry finds every request decided and
    changes nothing, yet the caches get the balances the first attempt committed."""
    rig.cache.put_many([Balance(ACCOUNT.user_id, "USD")], create=True)
    accept_deposit(rig, "d-1")
    rig.store = CommitThenFailOnce(rig.store)  # type: ignore[assignment]
    consumer = rig.consumer(retry_base_s=0.0)
    consumer.run_until_idle()
    consumer.close()
    assert rig.cache.get(ACCOUNT) == Balance(ACCOUNT.user_id, "USD", SCALE, 0, 1)
