"""The event loop a server runs on: uvloop by default, the standard library's on request.

grpc.aio hands every call between its completion-queue thread and the loop, so the
loop's own cost per wake-up is paid on every call. libuv's loop costs less there:
measured with `ledgerd bench` (alternating runs, same sitting), the API process spent
about a tenth less CPU per GetBalance and per ChangeBalance on uvloop, and the embedded
stack's reads 201 -> 176 µs a call. The echo yardstick stays on the standard loop: it
is "bare grpc.aio".
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

UVLOOP = "uvloop"
ASYNCIO = "asyncio"
LOOPS = (UVLOOP, ASYNCIO)


def run(main: Coroutine[Any, Any, T], loop: str = UVLOOP) -> T:
    """Run ``main`` to completion on a new loop of the kind ``loop`` names (as asyncio.run)."""
    if loop == UVLOOP:
        import uvloop

        return uvloop.run(main)
    if loop == ASYNCIO:
        return asyncio.run(main)
    raise ValueError(f"unknown event loop {loop!r}: not one of {', '.join(LOOPS)}")
