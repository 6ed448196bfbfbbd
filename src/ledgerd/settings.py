"""Settings from ``LEDGERD_*`` environment variables; each field's default is what a server
runs with when its variable is unset."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledgerd.runtime.loops import LOOPS

ENV_PREFIX = "LEDGERD_"
# More API processes than this on one host only add context switches and connections.
MAX_API_WORKERS = 64


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of ledgerd; each field is the variable ``LEDGERD_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Backends, chosen by URL (docs/deploy.md). An empty store URL means
    # SQLite inside data_dir.
    data_dir: Path = Path("./data")
    store_url: str = ""
    # Database shards (docs/scaling.md): comma-separated store URLs, shard 0 first; when
    # set it replaces store_url. Partition p's rows live in shard p mod len(shards).
    store_shards: str = ""
    log_url: str = "embedded:"
    cache_url: str = "memory:"

    # Roles this process runs.
    start_api: bool = True
    start_relay: bool = True
    start_consumer: bool = True
    start_cache_updater: bool = True

    # API worker processes (docs/deploy.md, "API workers"): N > 1 runs the API in N child
    # processes on one port (SO_REUSEPORT) under this one, which runs the other roles.
    api_workers: int = Field(1, ge=1, le=MAX_API_WORKERS)
    # Set by the parent for its worker i (1..N): this process serves only the API and
    # never starts workers of its own. Not for operators.
    api_worker_index: int = Field(0, ge=0, le=MAX_API_WORKERS)

    grpc_addr: str = "0.0.0.0:50051"
    metrics_addr: str = "0.0.0.0:9091"
    # The operator's page at / of metrics_addr (docs/operations.md): its lookups show
    # balances, so turn it off where the port is reachable by more than operators.
    console: bool = True
    # The REST/JSON gateway (off while empty), e.g. 0.0.0.0:8080.
    http_addr: str = ""
    # Its connections (docs/deploy.md, "Limits"): at most this many per process (then 429
    # and closed); a new connection's first request head must arrive within the header-read
    # timeout; a connection with no request in progress is closed after the keep-alive
    # timeout (aiohttp's default was 3630 s).
    rest_max_connections: int = Field(512, ge=1)
    rest_header_read_timeout_s: float = Field(10.0, gt=0)
    rest_keepalive_timeout_s: float = Field(15.0, gt=0)

    # Event log.
    partitions: int = Field(3, ge=1, le=1024)
    topic: str = "balance-changes"
    dlq_topic: str = "balance-changes-dlq"
    consumer_group: str = "balance-consumer-group"
    # The cache feed: consumers publish every committed balance here (with a shared
    # cache), and cache updaters in any process consume it in their own group.
    cache_feed_topic: str = "balance-updates"
    cache_updater_group: str = "ledgerd-cache-updater"
    # Change events out (docs/events.md): each consumer process publishes the journal
    # entries of its partitions to this topic; LEDGERD_EVENTS=false turns it off.
    events: bool = True
    events_topic: str = "balance-events"
    events_poll_interval_ms: int = Field(200, ge=1, le=60_000)
    # How long event records may wait to be sent to Kafka together (latency for fewer
    # broker requests).
    events_linger_ms: int = Field(50, ge=0, le=10_000)
    # TailEvents calls (gRPC and REST) one process serves at once: each holds a thread and
    # a log reader, and would otherwise count against max_concurrent_rpcs unbounded.
    events_max_tails: int = Field(32, ge=1, le=10_000)

    # Consumer batching: a batch closes at 200 messages or 50 ms after its first one. With
    # the relay's 50 ms linger (ledgerd.outbox.relay.PUBLISH_LINGER_MS) a batch gathers
    # about one produce round of each partition.
    consumer_batch_max_messages: int = Field(200, ge=1, le=100_000)
    consumer_batch_delay_ms: int = Field(50, ge=0, le=60_000)
    consumer_poll_timeout_ms: int = Field(1000, ge=1, le=60_000)
    consumer_max_retries: int = Field(3, ge=0, le=100)
    # Times deciding one log record may raise (counted in the store, across restarts)
    # before the record goes to the DLQ; until then its partition pauses and tries again.
    consumer_max_decision_failures: int = Field(3, ge=1, le=1000)
    # Balances the consumer keeps in memory (all its partitions); others reload from the store.
    consumer_max_accounts_in_memory: int = Field(1_000_000, ge=1)
    # How long Kafka waits for a silent consumer before moving its partitions (broker min 6 s).
    kafka_session_timeout_ms: int = Field(10_000, ge=1000, le=300_000)
    # Fault injection (ledgerd.support.failpoints), e.g.
    # "consumer.before_commit=sleep(100);relay.after_produce=error". Off when empty.
    failpoints: str = ""
    # The older spelling of failpoint consumer.before_commit=sleep(N), kept for fault drills.
    fault_consumer_commit_delay_ms: int = Field(0, ge=0, le=60_000)

    # Acceptance (group commit) and relay.
    accept_batch_max_rows: int = Field(10_000, ge=1, le=1_000_000)
    accept_queue_max_changes: int = Field(200_000, ge=1)
    # Under concurrent load, group commits begin at most this often (0: at once).
    # ledgerd.outbox.acceptor.COMMIT_INTERVAL_S says why 20.
    accept_commit_interval_ms: float = Field(20.0, ge=0, le=1000)
    relay_batch_max_messages: int = Field(10_000, ge=1)
    relay_sweep_interval_s: float = Field(1.0, gt=0)
    # Rows older than this without an outcome are published again (and finished ones are
    # deleted); consumers apply a message without reading its outcome only while it is
    # younger than half of it. Set the same value on every process of a deployment.
    relay_sweep_min_age_s: float = Field(30.0, ge=0)
    relay_retry_base_ms: int = Field(100, ge=1)
    relay_retry_max_ms: int = Field(30_000, ge=1)
    # An accepted request still without an outcome after this long (whatever its outbox
    # status) is logged as a warning by the outbox leader's count; the metric
    # ledgerd_oldest_unfinished_request_age_seconds shows the age all the time.
    unfinished_warn_s: float = Field(300.0, gt=0)

    # Waiting for an outcome (ChangeBalance wait=true) when the call has no deadline.
    wait_max_s: float = Field(10.0, gt=0, le=300)
    wait_poll_interval_ms: int = Field(50, ge=1)

    # Database: a pool of connections, callers queued for one up to a limit, connect timeout.
    db_pool_size: int = Field(15, ge=1)
    db_queue_limit: int = Field(100, ge=0)
    db_connect_timeout_s: float = Field(30.0, gt=0)
    # Write journal rows with LOAD DATA LOCAL INFILE instead of multi-row INSERT.
    mysql_load_data: bool = False

    # Leader election (a lease renewed well inside its TTL) and the leader's jobs.
    leader_lock_ttl_s: float = Field(5.0, gt=0)
    leader_renew_interval_s: float = Field(2.0, gt=0)
    # The leader audits the whole store this often and exports ledgerd_audit_problems.
    audit_interval_s: float = Field(3600.0, gt=0)
    # The audit reports a transfer debited this long ago and neither credited nor
    # returned (a stuck credit): longer than the sweep's delay and a consumer's restart.
    audit_max_in_flight_s: float = Field(300.0, gt=0)
    # The leader looks for holds past their expiry this often and sends their expiries (at
    # most this many a round); an expiry applies about one interval after it is due.
    hold_sweep_interval_s: float = Field(1.0, gt=0)
    hold_sweep_batch_max: int = Field(1000, ge=1)

    # Cache updater: it writes each poll of the cache feed at once (one feed consumer per
    # process, no worker threads on a timer; the Kafka group shares partitions between
    # processes). Memory cache bound; the leader's periodic full sync.
    cache_max_entries: int = Field(1_000_000, ge=1)
    cache_full_sync_interval_s: float = Field(300.0, gt=0)
    # How long Redis serves reads without the leader renewing its lease (every second): an
    # answer that could not reach Redis waits at most this long (ledgerd.cache.fence).
    cache_lease_ttl_s: float = Field(3.0, gt=0)
    # Negative entries (reads of accounts without a balance) Redis may create per 10 minutes.
    cache_negative_entries_max: int = Field(50_000, ge=0)
    # Under load, reads leave for Redis at most once per this gap, together (what Redis
    # and the socket calls cost follows writes, not reads); 0: at each loop turn. An idle
    # connection writes at once. 6 ms, not 2: with two API workers each sees half the
    # reads, and 2 ms left about two a write (read bench, docs/architecture.md §1).
    cache_read_write_gap_ms: float = Field(6.0, ge=0, le=50)
    cache_key_prefix: str = "ledgerd:"

    # Request signing (docs/architecture.md section 5): off while no keys are configured.
    hmac_keys: str = ""
    hmac_keys_file: Path | None = None
    # TLS for the gRPC port: both files, or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    # Supervision: a component that fails more than this many times within the window,
    # or has work and makes no progress for stall_after_s, is down (health NOT_SERVING;
    # a process running only some of the roles exits non-zero so its orchestrator restarts it).
    component_max_restarts: int = Field(5, ge=0)
    component_restart_window_s: float = Field(60.0, gt=0)
    component_stall_after_s: float = Field(60.0, gt=0)

    # BalanceService calls in progress per process, then RESOURCE_EXHAUSTED (gRPC and REST
    # each count their own). The standard services are apart (docs/deploy.md, "Limits"):
    # at most introspection_max_streams health Watch and reflection streams open at once,
    # each ended after introspection_stream_max_life_s, so that streams anyone may open
    # never use up the calls of BalanceService.
    max_concurrent_rpcs: int = Field(1000, ge=1)
    introspection_max_streams: int = Field(100, ge=1)
    introspection_stream_max_life_s: float = Field(300.0, gt=0)
    shutdown_grace_s: float = Field(10.0, ge=0)
    # The event loop `ledgerd serve` runs on (ledgerd.runtime.loops): "uvloop" (libuv's,
    # cheaper per call under grpc.aio) or "asyncio" (the standard library's selector loop).
    event_loop: str = "uvloop"
    log_level: str = "info"
    # The access log, one line per API call (gRPC and REST): "info" writes it at info,
    # "debug" at debug (so only with LEDGERD_LOG_LEVEL=debug), "off" never.
    access_log: str = "debug"

    @field_validator("grpc_addr", "metrics_addr", "http_addr")
    @classmethod
    def _host_and_port(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "http_addr" and value == "":
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port")
        return value

    @field_validator("store_shards")
    @classmethod
    def _shard_urls(cls, value: str) -> str:
        if not value.strip():
            return ""
        urls = [url.strip() for url in value.split(",")]
        for index, url in enumerate(urls):
            if not url:
                raise ValueError(f"shard {index} is empty (a stray comma?)")
            if not url.startswith(("sqlite:///", "mysql://")):
                where = store_location(url)
                raise ValueError(f"shard {index}: use sqlite:/// or mysql://, not {where!r}")
        for index, url in enumerate(urls):
            if url in urls[:index]:
                where = store_location(url)
                raise ValueError(f"shard {index} repeats shard {urls.index(url)} ({where})")
        # SQLite is the embedded store of one process: several files would still be one
        # machine's disk and one writer each, so they add no capacity, only ways to err.
        if len(urls) > 1 and any(url.startswith("sqlite") for url in urls):
            raise ValueError(
                "SQLite stays one shard: list MySQL URLs to shard, or one sqlite:/// URL"
            )
        return ",".join(urls)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @field_validator("event_loop")
    @classmethod
    def _known_loop(cls, value: str) -> str:
        if value.lower() not in LOOPS:
            raise ValueError("must be " + " or ".join(LOOPS))
        return value.lower()

    @field_validator("access_log")
    @classmethod
    def _access_log_mode(cls, value: str) -> str:
        if value.lower() not in {"off", "info", "debug"}:
            raise ValueError("must be off, info or debug")
        return value.lower()

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("LEDGERD_TLS_CERT_FILE and LEDGERD_TLS_KEY_FILE go together")
        return self

    @model_validator(mode="after")
    def _workers_need_shared_backends(self) -> Settings:
        if self.api_workers == 1 or not self.start_api:
            return self  # a process without the API role starts no workers
        last_port = int(self.metrics_addr.rpartition(":")[2]) + self.api_workers
        if self.api_worker_index == 0 and last_port > 65535:  # (a worker's port is P + i)
            raise ValueError(
                f"LEDGERD_METRICS_ADDR: API worker i listens on its port plus i, "
                f"so LEDGERD_API_WORKERS={self.api_workers} needs a port below "
                f"{65536 - self.api_workers}"
            )
        # Each of these lives inside one process, so N API processes cannot share it: the
        # embedded log is one process's files, the memory cache (fed by the consumer in
        # the parent) would go stale in every worker, and SQLite admits one writer at a
        # time, so N group commits would queue on its file lock.
        embedded = [
            variable
            for variable, in_process in (
                ("LEDGERD_STORE_URL (SQLite)", self.effective_store_url.startswith("sqlite")),
                ("LEDGERD_LOG_URL (embedded:)", self.log_url.startswith("embedded")),
                ("LEDGERD_CACHE_URL (memory:)", self.cache_url.startswith("memory")),
            )
            if in_process
        ]
        if embedded:
            raise ValueError(
                f"LEDGERD_API_WORKERS={self.api_workers} needs the production stack (MySQL, "
                f"Kafka, Redis), but {', '.join(embedded)} live in one process and cannot be "
                "shared by API worker processes; use LEDGERD_API_WORKERS=1 with the embedded "
                "stack"
            )
        return self

    @property
    def runs_api_workers(self) -> bool:
        """True in a parent that serves the API through worker processes instead of itself."""
        return self.start_api and self.api_workers > 1 and self.api_worker_index == 0

    @property
    def effective_store_url(self) -> str:
        """Shard 0's store URL (the only one without LEDGERD_STORE_SHARDS)."""
        return self.store_urls[0]

    @property
    def store_urls(self) -> list[str]:
        """The store URL of each shard, shard 0 first: LEDGERD_STORE_SHARDS, else the one
        LEDGERD_STORE_URL, else SQLite inside data_dir."""
        if self.store_shards:
            return self.store_shards.split(",")
        return [self.store_url or f"sqlite:///{self.data_dir / 'ledgerd.sqlite'}"]


def store_location(url: str) -> str:
    """Where a store URL points, for messages: host:port/database or the SQLite path."""
    return url.rsplit("@", maxsplit=1)[-1]


class ClientSettings(BaseSettings):
    """What the client commands (`ledgerd balance`, `change` …) read from ``LEDGERD_*``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # The server to call; empty: the local server's LEDGERD_GRPC_ADDR (0.0.0.0 → 127.0.0.1).
    addr: str = ""
    grpc_addr: str = "127.0.0.1:50051"
    # Where `ledgerd health --probe` looks by default: the local server's LEDGERD_METRICS_ADDR.
    metrics_addr: str = "127.0.0.1:9091"
    # Request signing and TLS trust of the client.
    client_key_id: str = ""
    client_secret: str = ""
    client_tls_ca: Path | None = None

    @property
    def target(self) -> str:
        return self.addr or _local(self.grpc_addr)

    @property
    def probe_target(self) -> str:
        return _local(self.metrics_addr)


def _local(address: str) -> str:
    """A listening address as a client reaches it on this host."""
    host, _, port = address.rpartition(":")
    return f"{'127.0.0.1' if host in ('0.0.0.0', '', '[::]') else host}:{port}"  # noqa: S104


def load_settings() -> Settings:
    """Read the settings from the environment.

    Raises:
        SettingsError: a variable has a bad value; the message names each one.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {error['msg']}"
            if error["loc"]
            else str(error["msg"]).removeprefix("Value error, ")
            for error in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
