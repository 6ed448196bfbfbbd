"""Threads that do ledgerd's work carry their names to the OS, where top -H and /proc see them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ledgerd.runtime.supervisor import Lifeline, Supervisor
from ledgerd.support.threadnames import name_os_thread


def _os_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def test_a_thread_takes_its_python_name_or_the_one_given_cut_to_15_bytes() -> None:
    seen: list[str] = []

    def run() -> None:
        name_os_thread()
        seen.append(_os_name(threading.get_native_id()))
        name_os_thread("cache_updater.feed-and-more")
        seen.append(_os_name(threading.get_native_id()))

    thread = threading.Thread(target=run, name="relay")
    thread.start()
    thread.join()
    assert seen == ["relay", "cache_updater.f"]


def test_a_supervised_thread_is_named_after_its_component() -> None:
    """The supervisor's threads (relay, consumer, events, cache updater …) name themselves."""
    seen: list[str] = []
    supervisor = Supervisor()

    def component(lifeline: Lifeline) -> None:
        seen.append(_os_name(threading.get_native_id()))
        lifeline.wait(60)

    supervisor.add_thread("relay", component)
    supervisor.start()
    try:
        for _ in range(500):
            if seen:
                break
            threading.Event().wait(0.01)
    finally:
        asyncio.run(supervisor.stop_all())
    assert seen == ["relay"]
