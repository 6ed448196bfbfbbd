"""One Redis connection on the event loop that pipelines whatever concurrent callers send.

One write (a pipeline) is in flight at a time: the commands callers issue
while it is out wait, and leave together in the next write as soon as its
last reply is in; a command issued when nothing is out leaves at the end of
the loop turn, with the others of that turn. Redis answers in order, so each
caller gets the reply at its position. Batches thus grow with the load by
themselves: grpc.aio hands the API one request per loop turn, so batching by
loop turn alone measured 1.03 commands per write under the read benchmark.
No thread is involved, and a command is only ever written after it was
issued (it never joins a write already sent).

Under load, writes are also spaced: a write leaves at least ``write_gap_s`` after
the previous one (a connection idle for longer writes at the end of the loop
turn, as before). Redis's CPU follows round trips, not commands (measured here:
45 µs a command one per round trip, 2-4 µs sixteen at a time), and so do the
socket calls on the loop; at 1,500 reads/s a gap of 2 ms makes writes of about
three reads, where the wait for the last reply alone made single ones. A busy
server's calls queue for tens of milliseconds anyway; an idle one adds nothing.

Why not ``redis.asyncio``: its per-command Python (RESP packing, a timeout
context per reply) measured 34-45 µs of CPU per read even when pipelined 64
at a time, against about 6 µs here with the same hiredis parser
(docs/architecture.md §6). This module does only what the read path needs:
commands are packed by the caller (``pack``), replies parsed by hiredis.

A caller that sends many small commands of one kind (the balance reads) can
send them as one ``Batch`` instead: an object that callers join while it waits
in the queue and that builds its single command only when its write leaves
(``command``), then takes that command's reply. Redis then runs one command per
write rather than one per caller, and the loop settles one reply.

Failures are ``CacheUnavailable``: refused or lost connection, no reply
within ``timeout_s`` (the connection is then dropped, so a late reply can
never be taken for another command's). Error replies (such as NOSCRIPT) are
returned as ``hiredis.ReplyError`` values, not raised. The next call after a
failure connects again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol, cast

import hiredis
from redis.connection import parse_url

from ledgerd.errors import CacheUnavailable

Reply = Any  # str, int, None, a list of replies, or hiredis.ReplyError


class Batch(Protocol):
    """Callers' requests sent as one command: built when its write leaves, answered by one
    reply (or failed as a whole)."""

    def command(self) -> bytes:
        """The command, packed; called once, when the write leaves (callers can no longer
        join after this)."""
        ...

    def done(self) -> bool: ...

    def set_result(self, reply: Reply) -> None: ...

    def set_exception(self, exc: BaseException) -> None: ...


def pack(*args: str | int) -> bytes:
    """One command in RESP, ready to send."""
    return pack_head(len(args), *args)


def pack_head(arg_count: int, *first: str | int) -> bytes:
    """The start of a command of ``arg_count`` arguments: its first ones; append the
    rest with ``pack_arg`` (a command sent often packs its constant part once)."""
    return b"*%d\r\n" % arg_count + b"".join(pack_arg(str(arg).encode()) for arg in first)


def pack_arg(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


class PipelinedRedis:
    """A lazily connected Redis connection shared by every caller on one event loop."""

    def __init__(
        self, url: str, *, timeout_s: float, name: str = "redis", write_gap_s: float = 0.0
    ) -> None:
        params: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._host = str(params.get("host", "localhost"))
        self._port = int(params.get("port", 6379))
        # Sent first on every new connection, as redis-py does for the same URL.
        self._setup: list[bytes] = []
        if params.get("password"):
            user = [params["username"]] if params.get("username") else []
            self._setup.append(pack("AUTH", *user, params["password"]))
        if int(params.get("db", 0)):
            self._setup.append(pack("SELECT", int(params["db"])))
        self._timeout_s = timeout_s
        self._write_gap_s = write_gap_s
        self._name = name
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def execute(self, command: bytes) -> Reply:
        """Send one packed command; its reply.

        Raises:
            CacheUnavailable: no connection, or no reply within the timeout.
        """
        connection = self._connection
        if connection is None or connection.lost or connection.loop is not _running_loop():
            connection = await self._connect()
        return await connection.send(command)

    def live(self) -> _Connection | None:
        """The connection on the running loop if it is up (then ``send_batch`` to it), else
        None (then ``connected``)."""
        connection = self._connection
        if connection is None or connection.lost or connection.loop is not _running_loop():
            return None
        return connection

    async def connected(self) -> _Connection:
        """A live connection on the running loop, connecting if needed.

        Raises:
            CacheUnavailable: cannot connect.
        """
        return self.live() or await self._connect()

    async def _connect(self) -> _Connection:
        if self._closed:
            raise CacheUnavailable(f"{self._name}: closed")
        loop = asyncio.get_running_loop()
        if self._connecting is None or self._loop is not loop:
            # A connection belongs to the loop that made it (tests run one loop after another).
            self._connection, self._loop = None, loop
            self._connecting = asyncio.Lock()
        async with self._connecting:  # one connect for every caller that found none
            connection = self._connection
            if connection is not None and not connection.lost:
                return connection
            try:
                async with asyncio.timeout(self._timeout_s):
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self._timeout_s, self._name, self._write_gap_s),
                        self._host,
                        self._port,
                    )
            except (OSError, TimeoutError) as exc:
                raise CacheUnavailable(f"{self._name}: cannot connect: {exc!r}") from exc
            for command in self._setup:
                reply = await connection.send(command)
                if isinstance(reply, hiredis.ReplyError):
                    connection.abort()
                    raise CacheUnavailable(f"{self._name}: {reply}")
            self._connection = connection
            return connection

    async def close(self) -> None:
        """Drop the connection; calls after this fail. Idempotent."""
        self._closed = True
        if self._connection is not None:
            self._connection.abort()
            self._connection = None


_running_loop = asyncio.get_running_loop


class _Connection(asyncio.Protocol):
    """The socket, the commands waiting for the next write, and the replies owed."""

    def __init__(self, timeout_s: float, name: str, write_gap_s: float = 0.0) -> None:
        self._timeout_s = timeout_s
        self._name = name
        self._write_gap_s = write_gap_s
        self._last_write_at = 0.0  # loop.time() of the last write
        self._flush_due = False  # a _flush is scheduled
        self._reader = hiredis.Reader(encoding="utf-8")
        self._transport: asyncio.Transport | None = None
        self._unsent: list[bytes | Batch] = []
        self._owed: deque[asyncio.Future[Reply] | Batch] = deque()  # in flight, then unsent
        self._in_flight = 0  # replies owed for the write that is out
        self.loop = asyncio.get_running_loop()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transport is no subclass of
        # asyncio.Transport (the check failed every connection under uvloop).
        self._transport = cast(asyncio.Transport, transport)

    def send(self, command: bytes) -> asyncio.Future[Reply]:
        loop = self.loop
        future: asyncio.Future[Reply] = loop.create_future()
        if self.lost:
            future.set_exception(CacheUnavailable(f"{self._name}: connection lost"))
            return future
        if not self._unsent and not self._in_flight:
            # Nothing is out: what callers send during this loop turn (or, under load,
            # until the write gap is over) leaves together.
            self._schedule_flush()
        # Otherwise the last reply of the write that is out flushes these.
        self._unsent.append(command)
        self._owed.append(future)
        return future

    def send_batch(self, batch: Batch) -> None:
        """Queue ``batch`` for the next write (callers may join it until it leaves); it gets
        its reply, or ``CacheUnavailable``, through ``set_result`` / ``set_exception``."""
        if self.lost:
            batch.set_exception(CacheUnavailable(f"{self._name}: connection lost"))
            return
        if not self._unsent and not self._in_flight:
            self._schedule_flush()
        self._unsent.append(batch)
        self._owed.append(batch)

    def _schedule_flush(self) -> None:
        if self._flush_due:
            return
        self._flush_due = True
        loop = self.loop
        wait_s = self._last_write_at + self._write_gap_s - loop.time()
        if wait_s > 0:
            loop.call_later(wait_s, self._flush)
        else:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self.lost or not self._unsent or self._transport is None or self._in_flight:
            return
        self._last_write_at = self.loop.time()
        self._transport.write(
            b"".join(c if isinstance(c, bytes) else c.command() for c in self._unsent)
        )
        self._in_flight = len(self._unsent)
        self._unsent.clear()
        # Replies come in order: when the last one of this write is in, all are.
        last = self._owed[-1]
        self.loop.call_later(self._timeout_s, self._give_up_unless_done, last)

    def _give_up_unless_done(self, last: asyncio.Future[Reply] | Batch) -> None:
        if not last.done() and not self.lost:
            self._fail(f"no reply within {self._timeout_s} s")

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        owed = self._owed
        while self._in_flight:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(f"protocol error: {exc}")
                return
            if reply is False:
                return
            self._in_flight -= 1
            future = owed.popleft()
            if not future.done():  # the caller may have been cancelled; the reply is its
                future.set_result(reply)
        if self._unsent:  # the commands that waited for this write
            if self._last_write_at + self._write_gap_s <= self.loop.time():
                self._flush()
            else:
                self._schedule_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc!r}" if exc else "connection closed")

    def abort(self) -> None:
        self._fail("connection closed")

    def _fail(self, why: str) -> None:
        """Fail every caller still owed a reply and drop the socket (it may be out of step)."""
        self.lost = True
        owed, self._owed = self._owed, deque()
        self._unsent.clear()
        self._in_flight = 0
        for future in owed:
            if not future.done():
                future.set_exception(CacheUnavailable(f"{self._name}: {why}"))
        if self._transport is not None:
            self._transport.abort()
