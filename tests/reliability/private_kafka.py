"""A private Kafka broker for the scenario that restarts the broker: the same jars and
configuration as the shared one of scripts/services (deploy/kafka), on free ports, its state
in a temporary directory.

Restarting the shared broker took 1.5 to 4 minutes, and grew with every test run: a broker
loads every partition it holds at start-up and flushes each at shutdown, and the shared one
holds every topic earlier tests left behind (6,974 partitions here one morning: 87 s to
load them). A fresh broker holds only the scenario's topics, and restarting it stops no
one else's tests.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient
from harness import REPO_ROOT, free_port, wait_until

DEPLOY = REPO_ROOT / "deploy" / "kafka"
START_TIMEOUT_S = 120.0  # a JVM start on a loaded 2-core machine
# scripts/services' flags but a smaller heap (one scenario's topics); the format tool's are
# those of its kafka_java.
BROKER = ("-Xms256m", "-Xmx256m", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
TOOL = ("-Xmx256m", "-XX:TieredStopAtLevel=1")


def kafka_libs() -> Path:
    """The broker's jars, fetched by ``scripts/services up kafka`` into the checkout that
    runs the shared services (LEDGERD_TEST_SERVICES names its script, as for restarts)."""
    script = os.environ.get("LEDGERD_TEST_SERVICES")
    root = Path(script).resolve().parents[1] if script else REPO_ROOT
    return root / ".services" / "kafka" / "libs"


def random_cluster_id() -> str:
    """What StorageTool random-uuid prints (16 random bytes in URL-safe base64, never
    starting with "-"), made here rather than by another JVM start."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not made.startswith("-"):
            return made


class PrivateKafka:
    """One KRaft broker+controller on two free ports, formatted on first start."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port, self.controller_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        config = (DEPLOY / "server.properties").read_text()
        config = config.replace("@KAFKA_DATA_DIR@", str(directory))
        config = config.replace("127.0.0.1:9092", f"127.0.0.1:{self.port}")
        config = config.replace("127.0.0.1:9093", f"127.0.0.1:{self.controller_port}")
        self.config = directory / "server.properties"
        self.config.write_text(config)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str, flags: tuple[str, ...]) -> list[str]:
        return [
            "java", *flags, "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.directory / 'logs'}",
            "-cp", f"{kafka_libs()}/*", *args,
        ]  # fmt: skip

    def start(self) -> PrivateKafka:
        """Start the broker (formatting its storage the first time); return once it answers."""
        if not (self.directory / "data" / "meta.properties").exists():
            cluster_id = random_cluster_id()
            subprocess.run(
                self._java("-Dkafka.log.file=format.log", "kafka.tools.StorageTool", "format",
                           "--standalone", "-t", cluster_id, "-c", str(self.config), flags=TOOL),
                check=True, capture_output=True, timeout=START_TIMEOUT_S,
            )  # fmt: skip
        with open(self.directory / "console.log", "ab") as console:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config), flags=BROKER),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.answers, START_TIMEOUT_S, f"the private Kafka broker on {self.bootstrap}")
        return self

    def answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "the broker exited"
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        try:
            cluster = admin.describe_cluster(request_timeout=2.0).result(timeout=3.0)
            return bool(cluster.nodes) and cluster.controller is not None
        except Exception:  # not up yet: any answer short of a cluster is "no"
            return False

    def stop(self) -> None:
        """SIGTERM, as ``scripts/services down kafka`` does: a controlled shutdown."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@contextmanager
def private_kafka(directory: Path) -> Iterator[PrivateKafka]:
    """A started private broker, stopped afterwards."""
    broker = PrivateKafka(directory)
    try:
        yield broker.start()
    finally:
        if broker.process is not None:
            broker.process.kill()  # its state is thrown away with the directory
            broker.process.wait()
