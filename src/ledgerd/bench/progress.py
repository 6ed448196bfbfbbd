"""A running scenario's progress on stderr, readable on a terminal and in a log file.

On a terminal one line is rewritten in place (``\\r``) at every update. Anywhere
else (a pipe, a CI log, ``make bench > bench.log``) carriage returns would pile
up into one unreadable line, so a plain line is written at most every
``interval_s`` seconds, and once more when the scenario finishes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

NON_TTY_INTERVAL_S = 5.0


class Progress:
    """Status lines of one labelled step (``update`` often, ``finish`` once)."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        interval_s: float = NON_TTY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        # live: rewrite one line in place; decided by the stream unless a caller says.
        self.live = self._stream.isatty() if live is None else live
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._last_line_at = self._started

    def _line(self, status: str) -> str:
        return f"  {self.label}: {self._clock() - self._started:4.0f}s  {status}"

    def update(self, status: str) -> None:
        """Show ``status`` now on a terminal; elsewhere only when a line is due."""
        if self.live:
            self._stream.write(f"\r{self._line(status)}   ")
        else:
            now = self._clock()
            if now - self._last_line_at < self._interval_s:
                return
            self._last_line_at = now
            self._stream.write(self._line(status) + "\n")
        self._stream.flush()

    def finish(self, status: str) -> None:
        """The final status, always shown, on a line of its own."""
        prefix = "\r" if self.live else ""
        self._stream.write(f"{prefix}{self._line(status)}\n")
        self._stream.flush()


def call_status(operations: int, calls: int, errors: int, elapsed_s: float) -> str:
    """What closed-loop callers did so far: totals, the mean rate and the errors."""
    rate = operations / elapsed_s if elapsed_s > 0 else 0.0
    carried = f"{operations:,} ops in " if operations != calls else ""
    return f"{carried}{calls:,} calls  {rate:,.0f}/s  errors {errors}"
