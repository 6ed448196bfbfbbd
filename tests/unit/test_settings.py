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
        ("consumer_batch_delay_ms", 50),
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
def test_each_setting_has_its_default(attribute: str, default: object) -> None:
    """With no variables set, each setting has its default value."""
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


PRODUCTION_URLS = {
    "LEDGERD_STORE_URL": "mysql://u:p@db:3306/ledgerd",
    "LEDGERD_LOG_URL": "kafka://broker:9092",
    "LEDGERD_CACHE_URL": "redis://cache:6379/0",
}


def test_one_api_process_by_default() -> None:
    """Without LEDGERD_API_WORKERS the process serves the API itself, as before."""
    settings = load_settings()
    assert settings.api_workers == 1
    assert not settings.runs_api_workers


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "65"])
def test_bad_api_worker_count_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """LEDGERD_API_WORKERS must be an integer from 1 to 64; the error names it."""
    for name, url in PRODUCTION_URLS.items():
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("LEDGERD_API_WORKERS", value)
    with pytest.raises(SettingsError, match="LEDGERD_API_WORKERS"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "embedded"),
    [
        ("LEDGERD_STORE_URL", "sqlite:///tmp/ledgerd.sqlite"),
        ("LEDGERD_LOG_URL", "embedded:"),
        ("LEDGERD_CACHE_URL", "memory:"),
    ],
)
def test_api_workers_are_refused_with_an_in_process_backend(
    monkeypatch: pytest.MonkeyPatch, variable: str, embedded: str
) -> None:
    """N > 1 with any embedded backend is refused, naming LEDGERD_API_WORKERS and the backend."""
    for name, url in PRODUCTION_URLS.items():
        monkeypatch.setenv(name, url)
    monkeypatch.setenv(variable, embedded)
    monkeypatch.setenv("LEDGERD_API_WORKERS", "2")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "LEDGERD_API_WORKERS=2 needs the production stack" in message
    assert variable in message
    assert "Value error" not in message


def test_api_workers_on_the_production_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """N > 1 on MySQL, Kafka and Redis: the process runs its API through workers."""
    for name, url in PRODUCTION_URLS.items():
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("LEDGERD_API_WORKERS", "4")
    settings = load_settings()
    assert settings.api_workers == 4
    assert settings.runs_api_workers


def test_a_worker_never_runs_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process started as worker i serves the API itself, whatever LEDGERD_API_WORKERS says."""
    for name, url in PRODUCTION_URLS.items():
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("LEDGERD_API_WORKERS", "4")
    monkeypatch.setenv("LEDGERD_API_WORKER_INDEX", "2")
    assert not load_settings().runs_api_workers


def test_worker_probe_ports_must_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker i probes on the metrics port plus i, so that port must leave room for N."""
    for name, url in PRODUCTION_URLS.items():
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("LEDGERD_API_WORKERS", "4")
    monkeypatch.setenv("LEDGERD_METRICS_ADDR", "0.0.0.0:65533")
    with pytest.raises(SettingsError, match="LEDGERD_METRICS_ADDR"):
        load_settings()


def test_a_process_without_the_api_ignores_api_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """LEDGERD_API_WORKERS concerns the API role: a consumer-only process starts no workers
    and is not refused on the embedded stack."""
    monkeypatch.setenv("LEDGERD_API_WORKERS", "2")
    monkeypatch.setenv("LEDGERD_START_API", "false")
    assert not load_settings().runs_api_workers


def test_the_access_log_is_at_debug_by_default() -> None:
    """LEDGERD_ACCESS_LOG defaults to debug: no access line at the default log level."""
    settings = load_settings()
    assert (settings.access_log, settings.log_level) == ("debug", "info")


@pytest.mark.parametrize("value", ["INFO", "off", "Debug"])
def test_access_log_modes_are_read_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """LEDGERD_ACCESS_LOG takes off, info or debug, in any case."""
    monkeypatch.setenv("LEDGERD_ACCESS_LOG", value)
    assert load_settings().access_log == value.lower()


def test_a_bad_access_log_mode_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another LEDGERD_ACCESS_LOG value stops start-up, naming the variable and the choices."""
    monkeypatch.setenv("LEDGERD_ACCESS_LOG", "verbose")
    with pytest.raises(SettingsError, match=r"LEDGERD_ACCESS_LOG: .*off, info or debug"):
        load_settings()


def test_servers_run_on_uvloop_by_default() -> None:
    """LEDGERD_EVENT_LOOP defaults to uvloop."""
    assert load_settings().event_loop == "uvloop"


@pytest.mark.parametrize(("value", "loop"), [("asyncio", "asyncio"), ("UVLOOP", "uvloop")])
def test_the_event_loop_is_read_in_any_case(
    monkeypatch: pytest.MonkeyPatch, value: str, loop: str
) -> None:
    """LEDGERD_EVENT_LOOP takes uvloop or asyncio, in any case."""
    monkeypatch.setenv("LEDGERD_EVENT_LOOP", value)
    assert load_settings().event_loop == loop


def test_a_bad_event_loop_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another LEDGERD_EVENT_LOOP value stops start-up, naming the variable and the choices."""
    monkeypatch.setenv("LEDGERD_EVENT_LOOP", "tokio")
    with pytest.raises(SettingsError, match=r"LEDGERD_EVENT_LOOP: .*uvloop or asyncio"):
        load_settings()
