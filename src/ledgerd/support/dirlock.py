"""The embedded data directory's lock: one process at a time serves from it.

The embedded store (SQLite) and the embedded log live in ``LEDGERD_DATA_DIR``. Two
processes on one directory would each consume the same partitions and publish from the
same outbox, so the directory is locked (``flock`` on ``ledgerd.lock`` inside it) by the
process that serves from it, for as long as it runs; a SQLite store kept outside the
directory gets a lock file of its own beside it (``<file>.lock``). The kernel releases a
lock when the process ends, however it ends (SIGKILL included), so a crash never leaves
one stale. Operator commands (``ledgerd migrate``, ``audit`` …) take no lock: SQLite's own
locks keep their short transactions consistent with a running server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from ledgerd.errors import DataDirLocked

LOCK_FILE_NAME = "ledgerd.lock"


def embedded_lock_paths(
    data_dir: Path, store_urls: Sequence[str], *, embedded_log: bool
) -> list[Path]:
    """The lock files a process serving these backends must hold: none on the production
    stack (MySQL and Kafka have their own fencing)."""
    paths: list[Path] = []
    sqlite_files = [
        Path(url.removeprefix("sqlite:///")) for url in store_urls if url.startswith("sqlite")
    ]
    if embedded_log or any(path.parent.resolve() == data_dir.resolve() for path in sqlite_files):
        paths.append(data_dir / LOCK_FILE_NAME)
    for path in sqlite_files:
        if path.parent.resolve() != data_dir.resolve():
            paths.append(path.with_name(path.name + ".lock"))
    return paths


class DataDirLock:
    """An exclusive, non-blocking lock on one lock file, held until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, recording this process's id in the file.

        Raises:
            DataDirLocked: another process holds it (the message names its pid).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DataDirLocked(
                str(self.path), f"pid {holder}" if holder else "pid unknown"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def lock_all(paths: Sequence[Path]) -> list[DataDirLock]:
    """Hold every lock of ``paths`` (none held if one is taken).

    Raises:
        DataDirLocked: another process holds one of them.
    """
    held: list[DataDirLock] = []
    try:
        for path in paths:
            lock = DataDirLock(path)
            lock.acquire()
            held.append(lock)
    except BaseException:
        for lock in held:
            lock.release()
        raise
    return held
