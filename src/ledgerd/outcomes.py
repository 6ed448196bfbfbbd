"""Wakes API calls waiting for their changes' outcomes (wait=true).

The consumer publishes outcomes after each commit; callers in this process
are woken at once. Callers whose changes are applied by another process are
not notified here: they poll the store between waits.

It lives where the consumer (which publishes) and the service's waiting calls (which
wait) meet, so both import it downwards and neither imports the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable


class OutcomeHub:
    """Thread-safe notification from the consumer thread to asyncio waiters."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def register(self, request_ids: Iterable[str]) -> asyncio.Event:
        """An event set when any of the requests gets an outcome here."""
        event = asyncio.Event()
        with self._lock:
            for request_id in request_ids:
                self._waiters[request_id].add(event)
        return event

    def unregister(self, request_ids: Iterable[str], event: asyncio.Event) -> None:
        with self._lock:
            for request_id in request_ids:
                waiters = self._waiters.get(request_id)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[request_id]

    def publish(self, request_ids: Iterable[str]) -> None:
        """Called from the consumer thread after a commit."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            if not self._waiters:
                return
            events = {e for rid in request_ids for e in self._waiters.get(rid, ())}
        for event in events:
            loop.call_soon_threadsafe(event.set)
