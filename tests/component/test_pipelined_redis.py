"""The pipelined Redis connection's write gap: an idle connection writes at once, a busy
one gathers what callers send until the gap since its last write is over (real Redis)."""

from __future__ import annotations

import asyncio

from harness import services

from ledgerd.cache.pipelined import PipelinedRedis, _Connection, pack


class _CountingWrites:
    """Counts the writes of every connection made while installed."""

    def __init__(self) -> None:
        self.writes = 0

    def install(self, connection: _Connection) -> None:
        transport = connection._transport
        assert transport is not None
        write = transport.write

        def counted(data: bytes | bytearray | memoryview) -> None:
            self.writes += 1
            write(data)

        transport.write = counted  # type: ignore[method-assign]


async def _connected(redis: PipelinedRedis, counter: _CountingWrites) -> None:
    assert await redis.execute(pack("PING")) == "PONG"  # connects
    assert redis._connection is not None
    counter.install(redis._connection)


def test_an_idle_connection_writes_a_command_without_waiting_for_the_gap() -> None:
    async def scenario() -> float:
        redis = PipelinedRedis(services.redis_url(), timeout_s=5.0, write_gap_s=30.0)
        counter = _CountingWrites()
        try:
            await _connected(redis, counter)
            assert redis._connection is not None
            redis._connection._last_write_at = 0.0  # idle for longer than the gap
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert await redis.execute(pack("PING")) == "PONG"
            assert counter.writes == 1
            return loop.time() - began
        finally:
            await redis.close()

    # Far below the 30 s gap: the command did not wait for it.
    assert asyncio.run(scenario()) < 10.0


def test_a_busy_connection_sends_what_callers_issue_within_the_gap_in_one_write() -> None:
    async def scenario() -> tuple[int, list[str]]:
        redis = PipelinedRedis(services.redis_url(), timeout_s=5.0, write_gap_s=1.0)
        counter = _CountingWrites()
        try:
            await _connected(redis, counter)
            # The connection wrote just now: commands issued one per loop turn wait for
            # the gap and leave together.
            calls = []
            for index in range(10):
                calls.append(asyncio.ensure_future(redis.execute(pack("ECHO", str(index)))))
                await asyncio.sleep(0)
            replies = await asyncio.gather(*calls)
            return counter.writes, replies
        finally:
            await redis.close()

    writes, replies = asyncio.run(scenario())
    assert replies == [str(index) for index in range(10)]
    assert writes == 1


def test_without_a_gap_commands_issued_while_a_write_is_out_leave_after_its_reply() -> None:
    async def scenario() -> tuple[int, list[str]]:
        redis = PipelinedRedis(services.redis_url(), timeout_s=5.0)
        counter = _CountingWrites()
        try:
            await _connected(redis, counter)
            first = asyncio.ensure_future(redis.execute(pack("ECHO", "first")))
            await asyncio.sleep(0)  # the first write leaves at the end of this turn
            rest = [asyncio.ensure_future(redis.execute(pack("ECHO", str(i)))) for i in range(5)]
            replies = await asyncio.gather(first, *rest)
            return counter.writes, replies
        finally:
            await redis.close()

    writes, replies = asyncio.run(scenario())
    assert replies == ["first", "0", "1", "2", "3", "4"]
    assert writes == 2


def test_the_connection_answers_callers_on_uvloop() -> None:
    """Servers run on uvloop, whose TCP transport is no asyncio.Transport subclass: the
    connection takes it all the same (an isinstance check once failed every connect)."""
    import uvloop

    async def scenario() -> list[str]:
        redis = PipelinedRedis(services.redis_url(), timeout_s=5.0)
        try:
            first = await redis.execute(pack("PING"))
            rest = await asyncio.gather(*(redis.execute(pack("ECHO", i)) for i in range(5)))
            return [first, *rest]
        finally:
            await redis.close()

    assert uvloop.run(scenario()) == ["PONG", "0", "1", "2", "3", "4"]
