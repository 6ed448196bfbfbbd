"""EventTail on the embedded log: a stopping server ends open tails and refuses new ones,
and a process serves at most ``max_open`` tails at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledgerd.errors import Overloaded, ServerStopping
from ledgerd.events.tail import EventTail
from ledgerd.log.embedded import EmbeddedLog

TOPIC = "balance-events"


@pytest.fixture
def tail(tmp_path: Path) -> EventTail:
    log = EmbeddedLog(tmp_path / "log.sqlite", partition_count=2)
    log.ensure_topics([TOPIC])
    return EventTail(log, TOPIC, max_open=2, poll_timeout_s=0.05)


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


def test_tails_beyond_max_open_are_refused_until_one_ends(tail: EventTail) -> None:
    asyncio.run(open_one_too_many(tail))


async def open_one_too_many(tail: EventTail) -> None:
    async def read_all(opened: asyncio.Event) -> None:
        async def on_open() -> None:
            opened.set()

        async for _ in tail.events(from_beginning=False, limit=0, on_open=on_open):
            pass

    first, second = asyncio.Event(), asyncio.Event()
    readers = [asyncio.ensure_future(read_all(first)), asyncio.ensure_future(read_all(second))]
    await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 10.0)
    with pytest.raises(Overloaded, match="LEDGERD_EVENTS_MAX_TAILS"):
        await read_all(asyncio.Event())
    readers[0].cancel()  # a client hangs up: its place is free again
    await asyncio.gather(readers[0], return_exceptions=True)
    third = asyncio.Event()
    readers.append(asyncio.ensure_future(read_all(third)))
    await asyncio.wait_for(third.wait(), 10.0)
    tail.stop()
    results = await asyncio.gather(*readers[1:], return_exceptions=True)
    assert [type(r) for r in results] == [ServerStopping, ServerStopping]
