"""A small thread-safe connection pool with a bounded wait queue (db_pool_size, db_queue_limit)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from ledgerd.errors import Overloaded, StoreUnavailable

C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """Lends at most ``size`` connections; at most ``queue_limit`` callers wait for one."""

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        *,
        size: int,
        queue_limit: int,
        wait_timeout_s: float,
    ) -> None:
        self._connect = connect
        self._close = close
        self._idle: list[C] = []
        self._slots = threading.Semaphore(size)
        self._waiting = 0
        self._queue_limit = queue_limit
        self._wait_timeout_s = wait_timeout_s
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[C]:
        """Borrow a connection; on an exception it is closed, not reused.

        Raises:
            Overloaded: more callers are already waiting than the queue limit allows.
            StoreUnavailable: no connection came free in time, or the pool is closed.
        """
        self._acquire_slot()
        try:
            connection = self._take()
            try:
                yield connection
            except BaseException:
                # Its state is unknown (mid-transaction, broken socket): never reuse it.
                self._discard(connection)
                raise
            self._give_back(connection)
        finally:
            self._slots.release()

    def _acquire_slot(self) -> None:
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self._queue_limit:
                raise Overloaded("database connection queue is full")
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=self._wait_timeout_s):
                raise StoreUnavailable("timed out waiting for a database connection")
        finally:
            with self._lock:
                self._waiting -= 1

    def _take(self) -> C:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("store is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, connection: C) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        self._close(connection)

    def _discard(self, connection: C) -> None:
        # Closing a broken connection may fail; it is gone either way.
        with contextlib.suppress(Exception):
            self._close(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)
