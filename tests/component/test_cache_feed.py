"""The cache feed on the embedded log: each batch publishes every touched account's
newest committed balance, keyed and partitioned like the account's changes."""

from __future__ import annotations

from component_support import Rig

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeType
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import decode_balance

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
        balance = decode_balance(record.value)
        found[balance.account] = balance
    return found


def test_a_batch_feeds_each_accounts_newest_balance(rig: Rig) -> None:
    """One message per account per batch, holding the store's balance, keyed by user id
    and in the account's partition; a later batch adds each account's next version."""
    rig.accept(changes("a"))
    rig.relay().run_until_idle()
    consumer = rig.consumer(feed_topic=FEED)
    consumer.run_until_idle()
    first = read_feed(rig)
    accounts = {Account(user, currency) for user in range(1, 5) for currency in ("USD", "EUR")}
    assert len(first) == len(accounts)  # one batch: one message per account
    for record in first:
        balance = decode_balance(record.value)
        assert record.key == user_key(balance.user_id)
        assert record.partition == partition_for_user(balance.user_id, 3)
        (stored,) = rig.store.get_balances(balance.user_id, balance.currency)
        assert balance == stored
    assert set(newest(first)) == accounts

    rig.accept(changes("b"))
    rig.relay().run_until_idle()
    consumer.run_until_idle()
    consumer.close()
    every = read_feed(rig)
    assert len(every) == 2 * len(accounts)
    for account, balance in newest(every).items():
        assert [balance] == list(rig.store.get_balances(account.user_id, account.currency))
    assert newest(every)[Account(1, "USD")].version == 8
