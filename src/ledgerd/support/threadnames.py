"""The OS name of a thread, after its Python name.

CPython (before 3.14) leaves every thread of the process named ``python3`` for the
kernel, so ``top -H``, ``ps -L`` and ``/proc/PID/task/*/comm`` cannot tell the relay from
the acceptor or the consumer. Threads that do ledgerd's work name themselves when they
start; Linux keeps the first 15 bytes. Elsewhere, or without a C library, nothing happens.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable

_PR_SET_NAME = 15  # prctl(2)
_NAME_BYTES = 15


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    # The process's own symbols, libc's among them: ``ctypes.util.find_library`` would run
    # ldconfig in a subprocess at every import (13 ms here). PyDLL keeps the GIL for the
    # call: a CDLL call releases it, and a thread that let go of it before its first loop
    # could be stopped (supervisor.stop_all right after start) without ever running.
    try:
        prctl: Callable[..., int] = ctypes.PyDLL(None).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread's OS thread ``name`` (default: its Python name)."""
    if _prctl is None:
        return
    text = name if name is not None else threading.current_thread().name
    raw = text.encode("ascii", "replace")[:_NAME_BYTES]
    _prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0)
