"""The operator's page on the operations port: ``/`` and its JSON endpoints.

Routes (all GET, all read-only):

* ``/``: the page; ``/console/{file}``: its CSS and JS (package data).
* ``/console/api/overview``: health, partitions, outbox, DLQ, leader locks, audit, and
  the charts' history (``Console.overview``).
* ``/console/api/account?user_id=U[&currency=C]``, ``/console/api/request?request_id=R``,
  ``/console/api/transfer?transfer_id=T``: the lookups (400 on a malformed field,
  404 when nothing has this id).
* ``/console/api/events``: the change events published from now on, as server-sent
  events (``ready`` once the reader is positioned, then ``change`` per event); at most
  ``TAILS_OPEN_MAX`` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import structlog
from aiohttp import web

from ledgerd.console.views import Console, memo_shown
from ledgerd.domain.validation import (
    validate_any_request_id,
    validate_currency,
    validate_request_id,
    validate_user_id,
)
from ledgerd.errors import InvalidArgument, LedgerError
from ledgerd.events.tail import EventTail
from ledgerd.runtime.health import Health
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.wiring.parts import Parts

log = structlog.get_logger(__name__)

STATIC_FILES = {
    "console.css": "text/css",
    "console.js": "text/javascript",
}
TAILS_OPEN_MAX = 4
# The charts' history is sampled this often even while no page is open, so an operator
# who opens the page in an incident sees the minutes before (one positions query and one
# end-offsets read a sample).
SAMPLE_INTERVAL_S = 5.0
# How often an event stream with no events checks that its client is still there.
_HANG_UP_CHECK_S = 1.0
# Only this origin's files run, nothing inline, and no other site may frame the page.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def console_routes(parts: Parts, health: Callable[[], Awaitable[Health]]) -> ConsoleRoutes:
    """The page of a process: its views over ``parts``, and a tail of the change events
    when they are on."""
    settings = parts.settings
    tail = (
        EventTail(parts.backends.event_log, settings.events_topic, max_open=TAILS_OPEN_MAX)
        if settings.events
        else None
    )
    return ConsoleRoutes(Console(parts, health), tail)


class ConsoleRoutes:
    """The page's routes on an aiohttp application, and the history sampler behind them."""

    def __init__(self, console: Console, tail: EventTail | None) -> None:
        self._console = console
        self._tail = tail
        self._sampler: asyncio.Task[None] | None = None

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/", self._page)
        app.router.add_get("/console/{name}", self._static)
        app.router.add_get("/console/api/overview", self._json(self._overview))
        app.router.add_get("/console/api/account", self._json(self._account))
        app.router.add_get("/console/api/request", self._json(self._request))
        app.router.add_get("/console/api/transfer", self._json(self._transfer))
        app.router.add_get("/console/api/events", self._events)

    def start(self) -> None:
        self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    async def stop(self) -> None:
        """End the event streams (within one poll each) and the sampler; idempotent."""
        if self._tail is not None:
            self._tail.stop()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    async def _sample_forever(self) -> None:
        while True:
            try:
                await self._console.sample()
            except Exception:  # a sample is best effort: the next one may succeed
                log.warning("operator page: sampling failed", exc_info=True)
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    # -- files -----------------------------------------------------------------
    async def _page(self, _: web.Request) -> web.Response:
        return _file("index.html", "text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return _file(name, STATIC_FILES[name])

    # -- JSON --------------------------------------------------------------------
    def _json(
        self, answer: Callable[[web.Request], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            try:
                body = await answer(request)
            except InvalidArgument as exc:
                return _json_response({"error": str(exc)}, 400)
            except LedgerError as exc:
                return _json_response({"error": str(exc)[:200]}, 503 if exc.retriable else 500)
            if body is None:
                return _json_response({"error": "not found"}, 404)
            return _json_response(body, 200)

        return endpoint

    async def _overview(self, _: web.Request) -> Any:
        return await self._console.overview()

    async def _account(self, request: web.Request) -> Any:
        user_id = validate_user_id(_integer(request, "user_id"))
        currency = request.query.get("currency", "").strip().upper()
        return await self._console.account(
            user_id, validate_currency(currency) if currency else None
        )

    async def _request(self, request: web.Request) -> Any:
        request_id = validate_any_request_id(_text(request, "request_id"))
        return await self._console.request(request_id)

    async def _transfer(self, request: web.Request) -> Any:
        transfer_id = validate_request_id(_text(request, "transfer_id"))
        return await self._console.transfer(transfer_id)

    # -- events ------------------------------------------------------------------
    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._tail is None:
            return _json_response({"error": "change events are off (LEDGERD_EVENTS)"}, 404)
        response = web.StreamResponse(
            headers={**_SECURITY_HEADERS, "Content-Type": "text/event-stream"}
        )

        async def opened() -> None:
            await response.prepare(request)
            await response.write(b"event: ready\ndata: {}\n\n")

        async def write_all(tail: EventTail) -> None:
            async for event in tail.events(from_beginning=False, limit=0, on_open=opened):
                data = json.dumps(_event(event))
                await response.write(f"event: change\ndata: {data}\n\n".encode())

        writing = asyncio.ensure_future(write_all(self._tail))
        try:
            while not writing.done():
                await asyncio.wait({writing}, timeout=_HANG_UP_CHECK_S)
                transport = request.transport
                if not writing.done() and (transport is None or transport.is_closing()):
                    break  # the page was closed: aiohttp does not cancel the handler
            if writing.done():
                writing.result()
        except LedgerError as exc:
            if not response.prepared:
                return _json_response({"error": str(exc)[:200]}, 503)
            error = json.dumps({"error": str(exc)[:200]})
            with contextlib.suppress(ConnectionError):
                await response.write(f"event: failed\ndata: {error}\n\n".encode())
        except ConnectionError:
            pass
        finally:
            if not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing
        return response


def _file(name: str, content_type: str) -> web.Response:
    body = (resources.files("ledgerd.console") / "static" / name).read_bytes()
    return web.Response(body=body, content_type=content_type, headers=_SECURITY_HEADERS)


def _json_response(body: Any, status: int) -> web.Response:
    return web.Response(
        text=json.dumps(body),
        status=status,
        content_type="application/json",
        headers=_SECURITY_HEADERS,
    )


def _text(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if not value:
        raise InvalidArgument(name, "is required")
    return value


def _integer(request: web.Request, name: str) -> int:
    text = _text(request, name)
    if not text.isdigit():
        raise InvalidArgument(name, "must be a positive integer")
    return int(text)


def _event(event: pb.BalanceEvent) -> dict[str, Any]:
    entry = event.entry
    return {
        "partition": event.partition,
        "sequence": event.sequence,
        "request_id": entry.request_id,
        "user_id": entry.user_id,
        "currency": entry.currency,
        "type": pb.ChangeType.Name(entry.type),
        "amount": entry.amount,
        "available_after": entry.available_after,
        "frozen_after": entry.frozen_after,
        "version": entry.version,
        "applied_at_unix_ms": entry.applied_at_unix_ms,
        "memo": memo_shown(entry.memo),
    }
