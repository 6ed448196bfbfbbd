"""Waiting for a condition with a deadline: how tests synchronise with processes.

A test never sleeps a fixed time and hopes; it polls for the condition it needs
and, when the condition never comes, fails with a message naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL_S = 0.05


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    ignoring: tuple[type[BaseException], ...] = (),
    interval_s: float = POLL_INTERVAL_S,
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Exceptions of the ``ignoring`` types count as "not yet" (say, OSError while a
    process restarts). Raises AssertionError naming ``what`` if the deadline passes.
    """
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ignoring as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"{what}: did not happen within {timeout_s} s{detail}")
        time.sleep(interval_s)


def wait_for(
    read: Callable[[], T],
    expected: T,
    timeout_s: float,
    what: str,
    *,
    ignoring: tuple[type[BaseException], ...] = (),
    interval_s: float = POLL_INTERVAL_S,
) -> T:
    """Call ``read`` until it returns ``expected``; on timeout the AssertionError shows
    the last value read next to the expected one."""
    last: list[T] = []

    def matches() -> bool:
        last[:] = [read()]
        return last[0] == expected

    try:
        wait_until(matches, timeout_s, what, ignoring=ignoring, interval_s=interval_s)
    except AssertionError as exc:
        seen = repr(last[0]) if last else "nothing (every read failed)"
        raise AssertionError(f"{exc}; last read {seen}, expected {expected!r}") from None
    return last[0]
