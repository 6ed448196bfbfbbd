"""The bench's progress lines: live on a terminal, a plain line every few seconds elsewhere."""

from __future__ import annotations

import io

from ledgerd.bench.progress import Progress, call_status


class Clock:
    """A clock the test advances."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_one_plain_line_every_interval_and_one_at_the_end() -> None:
    """Updates every second for 12 s give lines at 5 s and 10 s, then the final one; no \\r."""
    stream, clock = io.StringIO(), Clock()
    progress = Progress("change-batch", stream, interval_s=5.0, clock=clock)
    for second in range(1, 13):
        clock.now = 100.0 + second
        progress.update(f"at {second}")
    progress.finish("done")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "  change-batch:    5s  at 5",
        "  change-batch:   10s  at 10",
        "  change-batch:   12s  done",
    ]


def test_a_stream_that_is_not_a_terminal_gets_plain_lines() -> None:
    """Without a say from the caller, a non-tty stream (a pipe, a log file) is not live."""
    assert not Progress("echo", io.StringIO()).live


def test_on_a_terminal_every_update_rewrites_the_line() -> None:
    """Live: each update starts with \\r and ends no line; finish ends it."""
    stream, clock = io.StringIO(), Clock()
    progress = Progress("echo", stream, live=True, clock=clock)
    clock.now += 1
    progress.update("a")
    clock.now += 1
    progress.update("b")
    progress.finish("c")
    assert stream.getvalue() == "\r  echo:    1s  a   \r  echo:    2s  b   \r  echo:    2s  c\n"


def test_call_status_names_operations_only_when_calls_carry_several() -> None:
    """Batches show changes and calls; single calls show calls; the rate is over elapsed."""
    assert call_status(10, 10, 0, 2.0) == "10 calls  5/s  errors 0"
    assert call_status(4000, 4, 1, 2.0) == "4,000 ops in 4 calls  2,000/s  errors 1"
