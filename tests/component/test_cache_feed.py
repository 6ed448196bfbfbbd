"""The cache feed on the embedded log: each batch publishes every touched account's
newest committed balance, one record per partition, in the accounts' partition."""

from __future__ import annotations

from component_support import Rig

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeType
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import decode_balances

FEED = "balance-updates"


def read_feed(rig: Rig) -> list[LogRecord]:
    reader = rig.log.consumer("feed-reader")
    reader.subscribe(FEED, lambda partitions: dict.fromkeys(partitions, 0), lambda _: None)
    records: list[LogRecord] = []
    while batch := reader.poll_batch(1000, 0.0):
        records += batch
    return records


def changes(prefix: str) -> list[ChangeRequest]:
    """Per user 1..4: deposits of 1 in USD and EUR, three times, and one freeze in USD."""
    made = [
        ChangeRequest(f"{prefix}-{user}-{currency}-{n}", user, currency, ChangeType.DEPOSIT, SCALE)
        for n in range(3)
        for user in range(1, 5)
        for currency in ("USD", "EUR")
    ]
    made += [
        ChangeRequest(f"{prefix}-{user}-freeze", user, "USD", ChangeType.FREEZE, SCALE)
        for user in range(1, 5)
    ]
    return made


def newest(records: list[LogRecord]) -> dict[Account, Balance]:
    found: dict[Account, Balance] = {}
    for record in records:
        for balance in decode_balances(record.value):
            found[balance.account] = balance
    return found


def test_a_batch_feeds_each_accounts_newest_balance(rig: Rig) -> None:
    """One record per partition per batch, holding the store's balance of each account the
    batch touched there, keyed by a user id of that partition; a later batch adds each
    account's next version."""
    rig.accept(changes("a"))
    rig.relay().run_until_idle()
    consumer = rig.consumer(feed_topic=FEED)
    consumer.run_until_idle()
    first = read_feed(rig)
    accounts = {Account(user, currency) for user in range(1, 5) for currency in ("USD", "EUR")}
    partitions = {partition_for_user(user, 3) for user in range(1, 5)}
    assert sorted(r.partition for r in first) == sorted(partitions)  # one batch: one record each
    for record in first:
        balances = decode_balances(record.value)
        assert record.key == user_key(balances[0].user_id)
        for balance in balances:
            assert record.partition == partition_for_user(balance.user_id, 3)
            (stored,) = rig.store.get_balances(balance.user_id, balance.currency)
            assert balance == stored
    assert sum(len(decode_balances(r.value)) for r in first) == len(accounts)
    assert set(newest(first)) == accounts

    rig.accept(changes("b"))
    rig.relay().run_until_idle()
    consumer.run_until_idle()
    consumer.close()
    every = read_feed(rig)
    assert len(every) == 2 * len(partitions)
    for account, balance in newest(every).items():
        assert [balance] == list(rig.store.get_balances(account.user_id, account.currency))
    assert newest(every)[Account(1, "USD")].version == 8
