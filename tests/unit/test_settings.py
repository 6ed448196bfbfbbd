"""Settings from LEDGERD_* environment variables."""

import os

import pytest

from ledgerd.settings import ENV_PREFIX, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no LEDGERD_* variable set."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("attribute", "default"),
    [
        ("partitions", 3),
        ("consumer_batch_max_messages", 200),
        ("consumer_batch_delay_ms", 100),
        ("consumer_poll_timeout_ms", 1000),
        ("consumer_max_retries", 3),
        ("db_pool_size", 15),
        ("leader_lock_ttl_s", 5.0),
        ("leader_renew_interval_s", 2.0),
        ("grpc_addr", "0.0.0.0:50051"),
        ("metrics_addr", "0.0.0.0:9091"),
        ("topic", "balance-changes"),
        ("dlq_topic", "balance-changes-dlq"),
    ],
)
def test_defaults_match_the_seed(attribute: str, default: object) -> None:
    """With no variables set, each setting has the seed's default."""
    assert getattr(load_settings(), attribute) == default


def test_variable_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """LEDGERD_<NAME> sets the setting of that name."""
    monkeypatch.setenv("LEDGERD_PARTITIONS", "8")
    assert load_settings().partitions == 8


def test_non_numeric_partitions_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-integer LEDGERD_PARTITIONS raises SettingsError naming that variable."""
    monkeypatch.setenv("LEDGERD_PARTITIONS", "zero")
    with pytest.raises(SettingsError, match="LEDGERD_PARTITIONS"):
        load_settings()


def test_out_of_range_partitions_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition count of 0 raises SettingsError naming LEDGERD_PARTITIONS."""
    monkeypatch.setenv("LEDGERD_PARTITIONS", "0")
    with pytest.raises(SettingsError, match="LEDGERD_PARTITIONS"):
        load_settings()


@pytest.mark.parametrize("value", ["nonsense", "host:", ":50051", "host:99999", "host:port"])
def test_malformed_grpc_addr_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A LEDGERD_GRPC_ADDR that is not host:port raises SettingsError naming that variable."""
    monkeypatch.setenv("LEDGERD_GRPC_ADDR", value)
    with pytest.raises(SettingsError, match="LEDGERD_GRPC_ADDR"):
        load_settings()


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several bad variables, the message names each of them."""
    monkeypatch.setenv("LEDGERD_PARTITIONS", "zero")
    monkeypatch.setenv("LEDGERD_GRPC_ADDR", "nonsense")
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    assert "LEDGERD_PARTITIONS" in str(excinfo.value)
    assert "LEDGERD_GRPC_ADDR" in str(excinfo.value)
