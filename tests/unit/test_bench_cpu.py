"""The bench's CPU sampler, on fake /proc files: ticks per process and tree, backends by
listening port, and the idle rate subtracted from CPU per operation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledgerd.bench.cpu import (
    CpuMeter,
    Watched,
    backend_ports,
    backend_processes,
    idle_rates,
    listening_pids,
    per_operation_us,
    process_ticks,
    tree_ticks,
)

TICKS_PER_S = 100


class FakeProc:
    """A /proc tree in a temporary directory: stat files, fd links, /proc/net/tcp*."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "net").mkdir(parents=True)
        self.tcp: dict[str, list[str]] = {"tcp": [], "tcp6": []}
        self._write_tcp()
        (root / "self").mkdir()  # not a pid: ignored

    def process(
        self, pid: int, *, ppid: int = 1, name: str = "proc", ticks: tuple[int, ...] = (0, 0)
    ) -> None:
        """A process; ``ticks`` are utime, stime[, cutime, cstime]."""
        utime, stime, cutime, cstime = (*ticks, 0, 0)[:4]
        after = ["S", str(ppid), *["0"] * 9, str(utime), str(stime), str(cutime), str(cstime)]
        after += ["20", "0", "1", "0", "12345"]
        directory = self.root / str(pid)
        (directory / "fd").mkdir(parents=True, exist_ok=True)
        (directory / "stat").write_text(f"{pid} ({name}) {' '.join(after)}\n")

    def exit(self, pid: int) -> None:
        for entry in (self.root / str(pid) / "fd").iterdir():
            entry.unlink()
        (self.root / str(pid) / "fd").rmdir()
        (self.root / str(pid) / "stat").unlink()
        (self.root / str(pid)).rmdir()

    def listen(self, pid: int, port: int, inode: int, *, v6: bool = False, fd: int = 5) -> None:
        """``pid`` holds a socket listening on ``port``."""
        if v6:
            local = f"0000000000000000FFFF00000100007F:{port:04X}"
            self.tcp["tcp6"].append(self._line(local, "0A", inode))
        else:
            self.tcp["tcp"].append(self._line(f"0100007F:{port:04X}", "0A", inode))
        os.symlink(f"socket:[{inode}]", self.root / str(pid) / "fd" / str(fd))
        self._write_tcp()

    def connect(self, pid: int, port: int, inode: int) -> None:
        """An established connection from ``port`` (a client's socket, not a listener)."""
        self.tcp["tcp"].append(self._line(f"0100007F:{port:04X}", "01", inode))
        os.symlink(f"socket:[{inode}]", self.root / str(pid) / "fd" / "9")
        self._write_tcp()

    @staticmethod
    def _line(local: str, state: str, inode: int) -> str:
        return f"   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0"  # noqa: E501

    def _write_tcp(self) -> None:
        header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"  # noqa: E501
        for table, lines in self.tcp.items():
            (self.root / "net" / table).write_text(header + "".join(f"{x}\n" for x in lines))


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


class Clock:
    """A clock the test advances (also the sleep of the idle window)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.on_sleep: list[object] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for action in self.on_sleep:
            action()  # type: ignore[operator]


def test_process_ticks_add_user_system_and_reaped_children(proc: FakeProc) -> None:
    """utime + stime + cutime + cstime, read past a command name holding ') ' and spaces."""
    proc.process(40, name="odd) name (x", ticks=(700, 200, 50, 10))
    assert process_ticks(40, proc.root) == 960
    assert process_ticks(41, proc.root) is None


def test_tree_ticks_add_every_descendant(proc: FakeProc) -> None:
    """A server and its API workers (and their children) count together; others do not."""
    proc.process(10, ticks=(100, 0))
    proc.process(11, ppid=10, ticks=(20, 5))
    proc.process(12, ppid=11, ticks=(3, 0))
    proc.process(13, ppid=1, ticks=(1000, 0))
    assert tree_ticks(10, proc.root) == 128
    assert tree_ticks(11, proc.root) == 28


def test_listening_pids_match_socket_inodes_on_both_tcp_tables(proc: FakeProc) -> None:
    """A listener is found on tcp and on tcp6 (Kafka's v4-mapped socket); a connection from
    the same port number is not a listener; ports not asked for are ignored."""
    for pid in (100, 200, 300, 400):
        proc.process(pid)
    proc.listen(100, 3306, inode=5001)
    proc.listen(200, 9092, inode=5002, v6=True)
    proc.listen(300, 6380, inode=5003)
    proc.connect(400, 6379, inode=5004)
    assert listening_pids([3306, 9092, 6379], proc.root) == {3306: {100}, 9092: {200}}


def test_an_fd_that_cannot_be_read_does_not_hide_the_process(proc: FakeProc) -> None:
    """A busy server closes fds while they are listed: an unreadable one (here a plain
    file, readlink fails) is skipped, the listening socket beside it still found."""
    proc.process(100)
    (proc.root / "100" / "fd" / "3").write_text("")
    proc.listen(100, 3306, inode=5001, fd=7)
    assert listening_pids([3306], proc.root) == {3306: {100}}


def test_backend_ports_come_from_local_urls_with_default_ports() -> None:
    """mysql/kafka/redis URLs on this machine name their ports (defaults where none is
    given, every address of a Kafka list); remote hosts and other schemes are left out."""
    assert backend_ports(
        [
            "mysql://ledgerd:secret@127.0.0.1:3307/db",
            "mysql://u:p@localhost/db",
            "kafka://127.0.0.1:9092,127.0.0.1:9094",
            "redis://127.0.0.1/0",
            "redis://cache.example:6379/0",
            "sqlite:///tmp/x.sqlite",
        ]
    ) == {3307: "mariadb", 3306: "mariadb", 9092: "kafka", 9094: "kafka", 6379: "redis"}


def test_backend_processes_name_each_listener_once(proc: FakeProc) -> None:
    """Two MariaDB servers both count as mariadb; a forked child holding its parent's
    listening socket is counted through the parent's tree, not twice."""
    proc.process(100)
    proc.process(101)
    proc.process(200)
    proc.process(201, ppid=200)
    proc.listen(100, 3306, inode=1)
    proc.listen(101, 3307, inode=2)
    proc.listen(200, 6379, inode=3)
    os.symlink("socket:[3]", proc.root / "201" / "fd" / "5")
    found = backend_processes(
        ["mysql://a:b@127.0.0.1:3306/x", "mysql://a:b@127.0.0.1:3307/x", "redis://127.0.0.1:6379"],
        proc.root,
    )
    assert sorted((w.name, w.pid) for w in found) == [
        ("mariadb", 100),
        ("mariadb", 101),
        ("redis", 200),
    ]
    assert all(w.tree and w.idle for w in found)


def test_idle_rate_is_cpu_seconds_per_second_of_the_window(proc: FakeProc) -> None:
    """50 ticks (0.5 s at 100/s) over a 2 s window: 0.25 of a core."""
    proc.process(100, ticks=(1000, 0))
    clock = Clock()
    clock.on_sleep.append(lambda: proc.process(100, ticks=(1030, 20)))
    rates = idle_rates(
        [Watched("mariadb", 100, idle=True)],
        2.0,
        proc=proc.root,
        ticks_per_s=TICKS_PER_S,
        sleep=clock.sleep,
        clock=clock,
    )
    assert rates == {"mariadb": pytest.approx(0.25)}


def test_per_operation_subtracts_idle_rate_times_window_and_never_goes_negative() -> None:
    """mariadb: 1.0 s spent, idle 0.1/s over 5 s -> 0.5 s for 1000 ops = 500 µs; redis's
    work below its idle noise counts 0; a process without an idle rate keeps all of it."""
    per_op = per_operation_us(
        {"mariadb": 1.0, "redis": 0.01, "ledgerd": 2.0},
        {"mariadb": 0.1, "redis": 0.01},
        elapsed_s=5.0,
        operations=1000,
    )
    assert per_op == {
        "mariadb": pytest.approx(500.0),
        "redis": 0.0,
        "ledgerd": pytest.approx(2000.0),
    }
    assert per_operation_us({"mariadb": 1.0}, {}, elapsed_s=1.0, operations=0) == {}


def test_meter_window_counts_servers_and_backends_less_idle(proc: FakeProc) -> None:
    """A window over a server with a worker (names add up per role) and a backend: each
    name's CPU per op, the backend's idle rate x window subtracted; the client is not in
    it; a worker that exited and was reaped moved its ticks into its parent's cutime."""
    proc.process(10, ticks=(100, 0))  # the API server
    proc.process(11, ppid=10, ticks=(50, 0))  # its worker
    proc.process(20, ticks=(0, 0))  # the consumer
    proc.process(30, ticks=(500, 0))  # MariaDB
    clock = Clock()
    meter = CpuMeter(
        [Watched("mariadb", 30, tree=True, idle=True)],
        proc=proc.root,
        ticks_per_s=TICKS_PER_S,
        clock=clock,
    )
    clock.on_sleep.append(lambda: proc.process(30, ticks=(510, 0)))
    meter.measure_idle(1.0, sleep=clock.sleep)  # 0.1 s/s when idle
    assert meter.idle_rate == {"mariadb": pytest.approx(0.1)}
    meter.start([Watched("ledgerd api", 10, tree=True), Watched("ledgerd consumer", 20)])
    clock.now += 4.0
    proc.exit(11)  # the worker's 50 + 30 more ticks now sit in its parent's cutime
    proc.process(10, ticks=(300, 0, 80, 0))
    proc.process(20, ticks=(100, 100))
    proc.process(30, ticks=(610, 0))
    figures = meter.stop(operations=1000)
    assert figures.window_s == pytest.approx(4.0)
    assert figures.spent_s == {
        "ledgerd api": pytest.approx(2.3),
        "ledgerd consumer": pytest.approx(2.0),
        "mariadb": pytest.approx(1.0),
    }
    assert figures.per_op_us == {
        "ledgerd api": pytest.approx(2300.0),
        "ledgerd consumer": pytest.approx(2000.0),
        "mariadb": pytest.approx(600.0),  # 1.0 s less 0.1 s/s x 4 s
    }
    assert figures.total_us == pytest.approx(4900.0)
    assert figures.as_dict()["per_op_us"]["mariadb"] == 600.0


def test_meter_without_an_idle_window_subtracts_nothing(proc: FakeProc) -> None:
    """--idle-window 0: no sampling, idle rates of 0."""
    proc.process(30, ticks=(500, 0))
    meter = CpuMeter([Watched("kafka", 30, idle=True)], proc=proc.root, ticks_per_s=TICKS_PER_S)
    meter.measure_idle(0.0, sleep=lambda _: pytest.fail("slept"))
    assert meter.idle_rate == {"kafka": 0.0}


def test_stop_before_start_is_an_error(proc: FakeProc) -> None:
    """A window closed that was never opened is a programming error, said so."""
    with pytest.raises(RuntimeError, match="before start"):
        CpuMeter(proc=proc.root, ticks_per_s=TICKS_PER_S).stop(1)


def test_the_real_proc_is_read_for_this_process() -> None:
    """On this machine's /proc: this test process has spent CPU (its start-up alone)."""
    ticks = process_ticks(os.getpid())
    assert ticks is not None and ticks > 0
