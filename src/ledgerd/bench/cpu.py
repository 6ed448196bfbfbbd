"""CPU time per operation, per process, read from /proc: what an operation costs.

A scenario's figure is, for each process that does the work, the CPU time (user +
system, from ``/proc/PID/stat``) it spent between two samples, divided by the operations
done in between. The processes are the ledgerd servers the bench starts (each with its
descendants: API workers) and the backends listening on the configured ports (MariaDB,
Kafka, Redis), found through their listening sockets (``/proc/net/tcp*`` inodes matched to
``/proc/PID/fd`` links). The load generator (the bench's own process) is left out.

The backends are shared with anything else on the machine, so their rate over a short
idle window before the scenario's servers start is subtracted (rate x window). That
idle window comes before the servers start on purpose: what a started server costs a
backend while it merely polls (a Kafka consumer's fetches) is part of its cost.

Every function takes the /proc root as a parameter, so tests can point it at fake files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROC = Path("/proc")
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}  # noqa: S104 (a host name, not a bind)
# Backends by URL scheme; the default port where a URL names none.
BACKEND_PORTS = {"mysql": ("mariadb", 3306), "kafka": ("kafka", 9092), "redis": ("redis", 6379)}


@dataclass(frozen=True, slots=True)
class Watched:
    """A process whose CPU a scenario counts, under ``name`` (processes of one name add up).

    ``tree``: with its descendants (a server's API workers); ``idle``: a shared backend,
    whose idle rate is subtracted.
    """

    name: str
    pid: int
    tree: bool = False
    idle: bool = False


def _stat_fields(proc: Path, pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and
    parentheses: the fields start after its last ')'); None once the process is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_ticks(pid: int, proc: Path = PROC) -> int | None:
    """utime + stime + cutime + cstime of one process, in clock ticks; None if gone.

    The children's times count: a worker the process reaped took its CPU with it into
    cutime/cstime, and differences between two samples are what matter.
    """
    fields = _stat_fields(proc, pid)
    if fields is None:
        return None
    # After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    return sum(int(value) for value in fields[11:15])


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """``pid`` and every process below it, from the parent pids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(proc, int(entry.name))
        if fields is not None and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_ticks(pid: int, proc: Path = PROC) -> int:
    """CPU ticks of a process and its descendants now (processes gone count 0)."""
    return sum(process_ticks(p, proc) or 0 for p in descendants(pid, proc))


def listening_inodes(ports: Iterable[int], proc: Path = PROC) -> dict[int, int]:
    """Socket inode -> port, for the sockets listening on ``ports`` (any address, v4/v6)."""
    wanted = set(ports)
    found: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            if len(columns) < 10 or columns[3] != TCP_LISTEN:
                continue
            port = int(columns[1].rsplit(":", 1)[1], 16)
            if port in wanted and columns[9] != "0":
                found[int(columns[9])] = port
    return found


def listening_pids(ports: Iterable[int], proc: Path = PROC) -> dict[int, set[int]]:
    """Port -> the pids holding a socket listening on it (an open fd to its inode)."""
    inodes = listening_inodes(ports, proc)
    owners: dict[int, set[int]] = {}
    if not inodes:
        return owners
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        for link in _fd_links(entry / "fd"):
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                owners.setdefault(inodes[int(link[8:-1])], set()).add(int(entry.name))
    return owners


def _fd_links(fd_dir: Path) -> Iterator[str]:
    """Where a process's open fds point; fds closed while we look are skipped one by one
    (a busy server opens and closes connections all the time)."""
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return  # gone, or not ours to read
    for fd in fds:
        try:
            yield os.readlink(fd)
        except OSError:
            continue


def backend_ports(urls: Iterable[str]) -> dict[int, str]:
    """Port -> backend name, for the store, log and cache URLs that point at this machine
    (``mysql://``, ``kafka://host:port[,host:port]``, ``redis://``); others are ignored."""
    ports: dict[int, str] = {}
    for url in urls:
        scheme, _, rest = url.partition("://")
        if scheme not in BACKEND_PORTS:
            continue
        name, default_port = BACKEND_PORTS[scheme]
        for address in rest.split("/", 1)[0].split(","):
            parts = urlsplit(f"//{address}")
            if (parts.hostname or "") in LOCAL_HOSTS:
                ports[parts.port or default_port] = name
    return ports


def backend_processes(urls: Iterable[str], proc: Path = PROC) -> list[Watched]:
    """The backends listening on the ports of ``urls``, one entry per process."""
    ports = backend_ports(urls)
    pids: dict[int, str] = {}
    for port, holders in listening_pids(ports, proc).items():
        for pid in holders:
            pids.setdefault(pid, ports[port])
    # The lowest pid first: a forking server's parent holds the socket as its workers do.
    tops = [pid for pid in sorted(pids) if not _has_watched_parent(pid, pids, proc)]
    return [Watched(pids[pid], pid, tree=True, idle=True) for pid in tops]


def _has_watched_parent(pid: int, pids: Mapping[int, str], proc: Path) -> bool:
    fields = _stat_fields(proc, pid)
    return fields is not None and int(fields[1]) in pids


def sample(processes: Sequence[Watched], proc: Path = PROC) -> dict[Watched, int]:
    """Each process's CPU ticks now (with its descendants where ``tree``)."""
    return {
        p: tree_ticks(p.pid, proc) if p.tree else process_ticks(p.pid, proc) or 0 for p in processes
    }


def clock_ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK")


def idle_rates(
    backends: Sequence[Watched],
    window_s: float,
    *,
    proc: Path = PROC,
    ticks_per_s: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, float]:
    """CPU seconds per second each backend name spends over ``window_s`` of idleness
    (nothing of the scenario running); zeros for a window of 0."""
    if window_s <= 0 or not backends:
        return {b.name: 0.0 for b in backends}
    per_s = ticks_per_s or clock_ticks_per_s()
    before, started = sample(backends, proc), clock()
    sleep(window_s)
    after, elapsed_s = sample(backends, proc), clock() - started
    return {name: cpu_s / elapsed_s for name, cpu_s in _by_name(before, after, per_s).items()}


def _by_name(
    before: Mapping[Watched, int], after: Mapping[Watched, int], ticks_per_s: int
) -> dict[str, float]:
    """CPU seconds spent between two samples, added up per name."""
    spent: dict[str, float] = {}
    for process, ticks in after.items():
        delta = max(0, ticks - before.get(process, 0))
        spent[process.name] = spent.get(process.name, 0.0) + delta / ticks_per_s
    return spent


def per_operation_us(
    spent_s: Mapping[str, float],
    idle_rate: Mapping[str, float],
    elapsed_s: float,
    operations: int,
) -> dict[str, float]:
    """CPU-µs per operation of each name: its CPU time less its idle rate over the
    window, over the operations. Never below 0 (idle noise larger than the work)."""
    if operations <= 0:
        return {}
    return {
        name: max(0.0, cpu_s - idle_rate.get(name, 0.0) * elapsed_s) * 1e6 / operations
        for name, cpu_s in spent_s.items()
    }


@dataclass(frozen=True, slots=True)
class CpuFigures:
    """What one scenario's window cost, per process name."""

    operations: int
    window_s: float
    spent_s: dict[str, float]  # CPU seconds in the window, before the idle subtraction
    idle_rate: dict[str, float]  # CPU s/s of each backend when idle (subtracted)
    per_op_us: dict[str, float]  # CPU-µs per operation, idle subtracted

    @property
    def total_us(self) -> float:
        return sum(self.per_op_us.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "window_s": round(self.window_s, 2),
            "per_op_us": {name: round(us, 2) for name, us in self.per_op_us.items()},
            "total_us": round(self.total_us, 2),
            "spent_s": {name: round(s, 3) for name, s in self.spent_s.items()},
            "idle_rate": {name: round(rate, 4) for name, rate in self.idle_rate.items()},
        }


class CpuMeter:
    """One scenario's CPU window: the backends (and their idle rates, measured once by
    ``measure_idle``), plus the processes the scenario names when the window opens."""

    def __init__(
        self,
        backends: Sequence[Watched] = (),
        *,
        proc: Path = PROC,
        ticks_per_s: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backends = list(backends)
        self.idle_rate: dict[str, float] = {b.name: 0.0 for b in self.backends}
        self._proc = proc
        self._ticks_per_s = ticks_per_s or clock_ticks_per_s()
        self._clock = clock
        self._before: dict[Watched, int] | None = None
        self._started = 0.0
        self.figures: CpuFigures | None = None

    def measure_idle(self, window_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.idle_rate = idle_rates(
            self.backends,
            window_s,
            proc=self._proc,
            ticks_per_s=self._ticks_per_s,
            sleep=sleep,
            clock=self._clock,
        )

    def start(self, processes: Sequence[Watched] = ()) -> None:
        """Open the window over ``processes`` and the backends."""
        self._before = sample([*processes, *self.backends], self._proc)
        self._started = self._clock()

    def stop(self, operations: int) -> CpuFigures:
        """Close the window: the figures for ``operations`` done in it (kept in
        ``figures``)."""
        if self._before is None:
            raise RuntimeError("CpuMeter.stop before start")
        after = sample(list(self._before), self._proc)
        elapsed_s = self._clock() - self._started
        spent = _by_name(self._before, after, self._ticks_per_s)
        self._before = None
        self.figures = CpuFigures(
            operations=operations,
            window_s=elapsed_s,
            spent_s=spent,
            idle_rate=dict(self.idle_rate),
            per_op_us=per_operation_us(spent, self.idle_rate, elapsed_s, operations),
        )
        return self.figures
