"""Committed balances and open holds of the partitions this consumer owns, kept between
batches.

The store stays the truth: memory only saves reading it again. It holds what
the store committed, never more, so after anything that leaves the outcome of
a commit in doubt a partition's memory is reset and reloads from the store.
Only open holds are kept (a change naming a closed one reads it from the store).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ledgerd.domain.holds import Hold, HoldState
from ledgerd.domain.model import Account, Balance
from ledgerd.store.base import Store
from ledgerd.support.slots import slot_setters

# An account as (user_id, currency): a plain tuple hashes and compares in C, an
# ``Account`` in Python, and the column path looks up one per change.
AccountKey = tuple[int, str]


_new_object = object.__new__
_set_user_id, _set_currency = slot_setters(Account, "user_id", "currency")


def _account(user_id: int, currency: str) -> Account:
    """``Account(...)`` by its slots' descriptors: half the cost of the frozen dataclass's
    ``__init__``, once per account a batch finds in no memory (all of them, at first)."""
    account: Account = _new_object(Account)
    _set_user_id(account, user_id)
    _set_currency(account, currency)
    return account


class BalanceMemory:
    """Balances by owned partition, bounded by ``max_accounts`` over all of them."""

    def __init__(self, max_accounts: int) -> None:
        self._max_accounts = max_accounts
        self._by_partition: dict[int, dict[AccountKey, Balance]] = {}
        # Open holds by hold id, per partition (bounded by ``max_accounts`` too).
        self._holds: dict[int, dict[str, Hold]] = {}

    def get(self, partition: int, account: Account) -> Balance | None:
        """The committed balance, if the partition is owned and the account held."""
        state = self._by_partition.get(partition)
        return None if state is None else state.get((account.user_id, account.currency))

    def reset(self, partitions: Iterable[int]) -> None:
        """Owned partitions whose memory is empty from now on (reloaded from the store)."""
        for partition in partitions:
            self._by_partition[partition] = {}
            self._holds[partition] = {}

    def drop(self, partitions: Iterable[int]) -> None:
        """Partitions no longer owned."""
        for partition in partitions:
            self._by_partition.pop(partition, None)
            self._holds.pop(partition, None)

    def view(self, partition_of: Mapping[Account, int], store: Store) -> dict[Account, Balance]:
        """Balances of the accounts (in their partitions): memory, else the store, else zeros."""
        keys = {(a.user_id, a.currency): p for a, p in partition_of.items()}
        view = self.view_keys(keys, store)
        return {Account(*key): view.get(key) or Balance(*key) for key in keys}

    def view_keys(
        self, partition_of: Mapping[AccountKey, int], store: Store
    ) -> dict[AccountKey, Balance]:
        """``view`` by (user_id, currency), leaving out the accounts stored nowhere (their
        balance is zeros: the caller makes none per new account)."""
        view: dict[AccountKey, Balance] = {}
        missing: list[Account] = []
        by_partition = self._by_partition
        for key, partition in partition_of.items():
            state = by_partition.get(partition)
            if state is None:
                state = by_partition[partition] = {}
            known = state.get(key)
            if known is not None:
                view[key] = known
            else:
                missing.append(_account(*key))
        if missing:
            # Keyed again by tuple from the balances found: no Account hashed per lookup.
            for balance in store.load_balances(missing).values():
                view[balance.user_id, balance.currency] = balance
        return view

    def remember(
        self, balances: Mapping[Account, Balance], partition_of: Mapping[Account, int]
    ) -> None:
        """Take committed balances, then forget the oldest-loaded accounts past the cap
        (they reload from the store when touched again)."""
        self.remember_balances(list(balances.values()), [partition_of[a] for a in balances])

    def remember_balances(self, balances: Sequence[Balance], partitions: Sequence[int]) -> None:
        """``remember`` of balances with their partitions, in the same order."""
        by_partition = self._by_partition
        for balance, partition in zip(balances, partitions, strict=True):
            state = by_partition.get(partition)
            if state is None:
                state = by_partition[partition] = {}
            state[balance.user_id, balance.currency] = balance
        cap = max(1, self._max_accounts // max(1, len(by_partition)))
        for partition in set(partitions):
            state = by_partition[partition]
            while len(state) > cap:
                del state[next(iter(state))]

    def view_holds(self, wanted: Mapping[str, tuple[int, int]], store: Store) -> dict[str, Hold]:
        """The holds named (hold id -> (partition, holder's user id)): memory, else the
        store (an open one read there is kept); a hold stored nowhere is left out."""
        found: dict[str, Hold] = {}
        missing: set[tuple[int, str]] = set()
        for hold_id, (partition, user_id) in wanted.items():
            known = self._holds.setdefault(partition, {}).get(hold_id)
            if known is not None:
                found[hold_id] = known
            else:
                missing.add((user_id, hold_id))
        if missing:
            loaded = store.load_holds(missing)
            for hold_id, hold in loaded.items():
                found[hold_id] = hold
                partition, user_id = wanted[hold_id]
                # Kept in its holder's partition only (another user naming it is refused).
                if hold.state is HoldState.OPEN and hold.user_id == user_id:
                    self._holds[partition][hold_id] = hold
        return found

    def remember_holds(self, holds: Iterable[Hold], partition_of: Mapping[Account, int]) -> None:
        """Take committed holds: open ones are kept, closed ones forgotten."""
        cap = max(1, self._max_accounts // max(1, len(self._holds)))
        for hold in holds:
            partition = partition_of[Account(hold.user_id, hold.currency)]
            state = self._holds.setdefault(partition, {})
            if hold.state is HoldState.OPEN:
                state[hold.hold_id] = hold
                while len(state) > cap:
                    del state[next(iter(state))]
            else:
                state.pop(hold.hold_id, None)
