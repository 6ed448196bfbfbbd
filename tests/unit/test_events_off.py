"""With LEDGERD_EVENTS=false there is nothing to tail: TailEvents says so."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from ledgerd.api.errors import status_of
from ledgerd.api.handlers import Handlers
from ledgerd.errors import LogUnavailable
from ledgerd.service import LedgerService
from ledgerd.v1 import balance_pb2 as pb


async def first_event(handlers: Handlers) -> pb.TailEventsResponse:
    async for response in handlers.tail_events(pb.TailEventsRequest()):
        return response
    raise AssertionError("the stream ended without an event")


def test_tail_events_is_unavailable_when_events_are_off() -> None:
    """No event tail configured: UNAVAILABLE, naming the setting."""
    handlers = Handlers(cast(LedgerService, object()), cast(Any, object()), events=None)
    with pytest.raises(LogUnavailable, match="LEDGERD_EVENTS=false") as failed:
        asyncio.run(first_event(handlers))
    assert status_of(failed.value).name == "UNAVAILABLE"
