"""ledgerd.runtime.loops: a server's coroutine runs on the loop its setting names."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from ledgerd.runtime import loops


async def _running_loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_runs_the_coroutine_on_a_uvloop_loop() -> None:
    assert issubclass(loops.run(_running_loop_type(), loops.UVLOOP), uvloop.Loop)


def test_asyncio_runs_the_coroutine_on_the_standard_loop() -> None:
    ran_on = loops.run(_running_loop_type(), loops.ASYNCIO)
    assert not issubclass(ran_on, uvloop.Loop)
    assert issubclass(ran_on, asyncio.BaseEventLoop)


def test_an_unknown_loop_is_refused_by_name() -> None:
    coroutine = _running_loop_type()
    with pytest.raises(ValueError, match="'tokio'"):
        loops.run(coroutine, "tokio")
    coroutine.close()  # never started: closed so that it is not reported as never awaited
