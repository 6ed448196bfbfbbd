"""EventTail on the embedded log: a stopping server ends open tails and refuses new ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledgerd.errors import ServerStopping
from ledgerd.events.tail import EventTail
from ledgerd.log.embedded import EmbeddedLog

TOPIC = "balance-events"


@pytest.fixture
def tail(tmp_path: Path) -> EventTail:
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=2)
    log.ensure_topics([TOPIC])
    return EventTail(log, TOPIC, poll_timeout_s=0.05)


def test_stop_ends_an_open_tail_with_server_stopping(tail: EventTail) -> None:
    asyncio.run(stop_while_open(tail))


async def stop_while_open(tail: EventTail) -> None:
    opened = asyncio.Event()

    async def on_open() -> None:
        opened.set()

    async def read_all() -> None:
        async for _ in tail.events(from_beginning=False, limit=0, on_open=on_open):
            pass

    reading = asyncio.ensure_future(read_all())
    await asyncio.wait_for(opened.wait(), 10.0)
    assert not reading.done()  # a tail with nothing to read stays open
    tail.stop()
    with pytest.raises(ServerStopping):
        await asyncio.wait_for(reading, 10.0)


def test_a_tail_opened_after_stop_is_refused(tail: EventTail) -> None:
    async def read_all() -> None:
        async for _ in tail.events(from_beginning=True, limit=0):
            pass

    tail.stop()
    with pytest.raises(ServerStopping):
        asyncio.run(read_all())
