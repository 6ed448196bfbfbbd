"""The in-process balance cache: last write wins by version, bounded LRU."""

from hypothesis import given
from hypothesis import strategies as st

from ledgerd.cache.memory import MemoryCache
from ledgerd.domain.model import Account, Balance


def balance(user_id: int = 1, version: int = 1, available: int = 0) -> Balance:
    return Balance(user_id, "USD", available, 0, version)


def account(user_id: int = 1) -> Account:
    return Account(user_id, "USD")


def test_get_of_an_uncached_account_is_none() -> None:
    """An account never put reads as not cached."""
    assert MemoryCache().get(account()) is None


def test_newer_version_replaces_the_cached_balance() -> None:
    """A put with a higher version replaces the cached balance."""
    cache = MemoryCache()
    cache.put_many([balance(version=1, available=10)], create=True)
    cache.put_many([balance(version=2, available=20)], create=True)
    assert cache.get(account()) == balance(version=2, available=20)


def test_older_version_never_replaces_a_newer_one() -> None:
    """A late put with a lower version leaves the newer cached balance in place."""
    cache = MemoryCache()
    cache.put_many([balance(version=5, available=50)], create=True)
    cache.put_many([balance(version=4, available=40)], create=True)
    assert cache.get(account()) == balance(version=5, available=50)


def test_same_version_does_not_replace_the_cached_balance() -> None:
    """A repeated put of the cached version keeps the first one."""
    cache = MemoryCache()
    cache.put_many([balance(version=3, available=30)], create=True)
    cache.put_many([balance(version=3, available=99)], create=True)
    assert cache.get(account()) == balance(version=3, available=30)


def test_newest_version_wins_within_one_put() -> None:
    """Out-of-order versions of one account in one put leave the highest version."""
    cache = MemoryCache()
    cache.put_many([balance(version=2), balance(version=3), balance(version=1)], create=True)
    cached = cache.get(account())
    assert cached is not None
    assert cached.version == 3


def test_bound_evicts_the_least_recently_put_entry() -> None:
    """Beyond max_entries, the entry untouched for longest is evicted."""
    cache = MemoryCache(max_entries=2)
    cache.put_many([balance(user_id=1), balance(user_id=2), balance(user_id=3)], create=True)
    assert len(cache) == 2
    assert cache.get(account(1)) is None
    assert cache.get(account(2)) is not None
    assert cache.get(account(3)) is not None


def test_get_makes_an_entry_recently_used() -> None:
    """Reading an entry protects it from the next eviction."""
    cache = MemoryCache(max_entries=2)
    cache.put_many([balance(user_id=1), balance(user_id=2)], create=True)
    cache.get(account(1))
    cache.put_many([balance(user_id=3)], create=True)
    assert cache.get(account(2)) is None
    assert cache.get(account(1)) is not None


def test_newer_put_makes_an_entry_recently_used() -> None:
    """Updating an entry to a newer version protects it from the next eviction."""
    cache = MemoryCache(max_entries=2)
    cache.put_many([balance(user_id=1), balance(user_id=2)], create=True)
    cache.put_many([balance(user_id=1, version=2)], create=True)
    cache.put_many([balance(user_id=3)], create=True)
    assert cache.get(account(2)) is None
    assert cache.get(account(1)) is not None


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 20)), min_size=1, max_size=50))
def test_cached_version_is_the_highest_ever_put(puts: list[tuple[int, int]]) -> None:
    """Whatever the order of puts, each account holds the highest version put for it."""
    cache = MemoryCache()
    for user_id, version in puts:
        cache.put_many([balance(user_id=user_id, version=version)], create=True)
    highest: dict[int, int] = {}
    for user_id, version in puts:
        highest[user_id] = max(version, highest.get(user_id, version))
    for user_id, version in highest.items():
        cached = cache.get(account(user_id))
        assert cached is not None
        assert cached.version == version


def test_a_write_without_create_only_raises_an_entry_it_holds() -> None:
    """An evicted or never cached account stays uncached when a balance that may be old is
    put without ``create``; an entry it holds is raised."""
    cache = MemoryCache()
    cache.put_many([balance(user_id=1, version=3)])
    assert cache.get(Account(1, "USD")) is None
    cache.put_many([balance(user_id=1, version=1)], create=True)
    cache.put_many([balance(user_id=1, version=4)])
    assert cache.get(Account(1, "USD")) == balance(user_id=1, version=4)
