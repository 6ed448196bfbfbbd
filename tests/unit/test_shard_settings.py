"""LEDGERD_STORE_SHARDS: parsed into one URL per shard, refused with the shard named."""

from __future__ import annotations

import pytest

from ledgerd.domain.partitioning import partition_for_user, shard_for_partition, shard_for_user
from ledgerd.settings import Settings, SettingsError, load_settings

A = "mysql://u:p@db-a:3306/ledgerd"
B = "mysql://u:p@db-b:3306/ledgerd"


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"LEDGERD_{name.upper()}", value)
    return load_settings()


def test_shards_replace_the_store_url_shard_zero_first(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, store_url="mysql://u:p@other/x", store_shards=f" {A} , {B} ")
    assert loaded.store_urls == [A, B]
    assert loaded.effective_store_url == A


def test_without_shards_the_store_url_is_the_one_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(monkeypatch, store_url=A).store_urls == [A]
    default = settings(monkeypatch, data_dir="/d", store_url="").store_urls
    assert default == ["sqlite:////d/ledgerd.sqlite"]


def test_one_sqlite_shard_is_today_s_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(monkeypatch, store_shards="sqlite:///x.db").store_urls == ["sqlite:///x.db"]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("sqlite:///a.db,sqlite:///b.db", "SQLite stays one shard"),
        (f"{A},sqlite:///b.db", "SQLite stays one shard"),
        (f"{A},,{B}", "shard 1 is empty"),
        (f"{A},{A}", "shard 1 repeats shard 0 (db-a:3306/ledgerd)"),
        (f"{A},postgres://u:p@h/db", "shard 1: use sqlite:/// or mysql://, not 'h/db'"),
    ],
)
def test_bad_shard_lists_are_refused_naming_the_shard(
    monkeypatch: pytest.MonkeyPatch, value: str, complaint: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        settings(monkeypatch, store_shards=value)
    assert "LEDGERD_STORE_SHARDS" in str(refused.value)
    assert complaint in str(refused.value)
    assert ":p@" not in str(refused.value)  # no password in the message


def test_a_partition_lives_in_shard_partition_mod_shards() -> None:
    assert [shard_for_partition(p, 2) for p in range(6)] == [0, 1, 0, 1, 0, 1]
    assert [shard_for_partition(p, 1) for p in range(3)] == [0, 0, 0]
    for user_id in (1, 42, 10**19):
        assert shard_for_user(user_id, 8, 3) == partition_for_user(user_id, 8) % 3
