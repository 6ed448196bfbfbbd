"""Reading ``balance-events`` back for TailEvents (gRPC) and ``GET /v1/events`` (REST).

Each call gets a group-less reader of every partition (nothing committed, no rebalance
of anyone's group). A tail never ends by itself, so a server that is stopping ends them
all (``stop``) rather than wait out its grace period for them. The reader blocks, so it
runs on a thread of the call's own, one short poll at a time; when the call ends (limit
reached, client gone, server stopping) the reader is closed on that thread after its
last poll, even when the call's task was cancelled in the middle of one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ledgerd import metrics
from ledgerd.errors import Overloaded, ServerStopping
from ledgerd.events.codec import decode_event
from ledgerd.log.base import EventLog, LogReader
from ledgerd.v1 import balance_pb2 as pb

_POLL_MAX_RECORDS = 500
# Awaited once a call's reader is positioned (gRPC: send the response headers).
OnOpen = Callable[[], Awaitable[None]]


class EventTail:
    """Opens a reader of the events topic per call and streams its events."""

    def __init__(
        self, event_log: EventLog, topic: str, *, max_open: int = 32, poll_timeout_s: float = 0.25
    ) -> None:
        self._log = event_log
        self._topic = topic
        self._max_open = max_open
        self._poll_timeout_s = poll_timeout_s
        self._open_calls = 0
        self._stopping = False

    def stop(self) -> None:
        """End every open call (each within one poll) and refuse new ones."""
        self._stopping = True

    async def events(
        self, *, from_beginning: bool, limit: int, on_open: OnOpen | None = None
    ) -> AsyncIterator[pb.BalanceEvent]:
        """Events from the oldest kept (``from_beginning``) or from those published after the
        reader opened, until ``limit`` events (0: until the caller stops iterating).
        ``on_open`` is awaited once the reader is positioned.

        Raises:
            LogUnavailable: the log did not answer.
            Overloaded: ``max_open`` calls are open already.
            PoisonMessage: a record of the topic is not an event.
            ServerStopping: ``stop`` was called.
        """
        if self._stopping:
            raise ServerStopping("the server is stopping")
        if self._open_calls >= self._max_open:
            raise Overloaded(
                f"{self._open_calls} event tails are open here, as many as"
                " LEDGERD_EVENTS_MAX_TAILS allows"
            )
        self._open_calls += 1
        try:
            async with contextlib.aclosing(self._read(from_beginning, limit, on_open)) as events:
                async for event in events:
                    yield event
        finally:
            self._open_calls -= 1

    async def _read(
        self, from_beginning: bool, limit: int, on_open: OnOpen | None
    ) -> AsyncGenerator[pb.BalanceEvent, None]:
        # One thread per call: its polls, then the close, run in order on it.
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-tail")
        opening = thread.submit(self._open, from_beginning)
        try:
            reader = await asyncio.wrap_future(opening)
        except BaseException:
            thread.submit(_close_opened, opening)  # cancelled while opening: it may have opened
            thread.shutdown(wait=False)
            raise
        try:
            if on_open is not None:
                await on_open()
            sent = 0
            while True:
                if self._stopping:
                    raise ServerStopping("the server is stopping: tail events from another")
                records = await asyncio.wrap_future(
                    thread.submit(reader.poll_batch, _POLL_MAX_RECORDS, self._poll_timeout_s)
                )
                for record in records:
                    yield decode_event(record.value)
                    sent += 1
                    if limit and sent >= limit:
                        return
        finally:
            # Queued behind a poll still running (a cancelled call does not stop it), and
            # not awaited: a cancelled call must not wait for it.
            thread.submit(_close, reader)
            thread.shutdown(wait=False)

    def _open(self, from_beginning: bool) -> LogReader:
        reader = self._log.reader(self._topic, from_beginning=from_beginning)
        metrics.EVENT_TAILS_OPEN.inc()
        return reader


def _close_opened(opening: Future[LogReader]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        _close(opening.result())


def _close(reader: LogReader) -> None:
    try:
        reader.close()
    finally:
        metrics.EVENT_TAILS_OPEN.dec()
