"""The REST gateway's connections: at most so many per process, and none held by a slow client.

aiohttp's server keeps a connection as long as the client wants by default (keep-alive
3630 s, no limit on connections), so clients that open sockets and send a request's
headers byte by byte, or never, hold file descriptors the gRPC server, the database pools
and Kafka need. Three bounds, each a setting:

* ``max_connections``: past it, a new connection gets ``429 RESOURCE_EXHAUSTED`` and is
  closed at once (``Connection: close``), so the process never holds more sockets for REST.
* ``header_read_timeout_s``: a new connection that has not sent a complete request head
  (request line and headers) within it is closed.
* ``keepalive_timeout_s`` (aiohttp's ``keepalive_timeout``): a connection with no request in
  progress, whether idle or in the middle of a next request's head, is closed once it has
  waited that long since its last answer.

So a socket is held without a request being served for at most the header-read timeout
(first request) or the keep-alive timeout (later ones). A slow request body is bounded by
neither; LEDGERD_MAX_CONCURRENT_RPCS and the connection cap bound what it can hold.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import cast

from aiohttp import web

# The end of a request head (RFC 9112: CRLF CRLF after the last header line).
_HEAD_END = b"\r\n\r\n"


def _refusal(max_connections: int) -> bytes:
    body = json.dumps(
        {
            "code": "RESOURCE_EXHAUSTED",
            "message": f"too many connections (limit {max_connections}); retry later",
            "details": [],
        }
    ).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """A protocol factory around aiohttp's: counts connections, refuses past the cap, and
    closes a connection whose first request head is late."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        *,
        max_connections: int,
        header_read_timeout_s: float,
    ) -> None:
        self._factory = factory
        self.max_connections = max_connections
        self.header_read_timeout_s = header_read_timeout_s
        self.open = 0
        self._refusal = _refusal(max_connections)

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.max_connections:
            return _Refused(self._refusal)
        return _Guarded(self, self._factory())


class _Refused(asyncio.Protocol):
    """A connection past the cap: one error answer, then closed."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        stream.write(self._answer)
        stream.close()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol of one connection, seen through: counted while open, and closed
    if its first request head does not arrive within the header-read timeout."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for a head end split between reads
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._guard.open += 1
        self._counted = True
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.header_read_timeout_s, self._head_late)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if _HEAD_END in seen:
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = seen[-(len(_HEAD_END) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._counted:
            self._counted = False
            self._guard.open -= 1
        self._inner.connection_lost(exc)

    def _head_late(self) -> None:
        self._timer = None
        if self._transport is not None:
            # abort, not close: nothing is owed to this client, and the socket is freed now.
            self._transport.abort()


class GuardedSite(web.TCPSite):
    """aiohttp's TCP site with its connections under a ConnectionGuard."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        header_read_timeout_s: float,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=True)
        self._limits = (max_connections, header_read_timeout_s)
        self.guard: ConnectionGuard | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None  # the runner is set up before its sites start
        max_connections, header_read_timeout_s = self._limits
        self.guard = ConnectionGuard(
            server, max_connections=max_connections, header_read_timeout_s=header_read_timeout_s
        )
        self._server = await asyncio.get_running_loop().create_server(
            self.guard, self._host, self._port, reuse_port=True
        )
