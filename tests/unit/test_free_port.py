"""free_port: a listener's port that no outgoing connection and no earlier pick can take."""

from __future__ import annotations

import socket
from collections import deque
from pathlib import Path

import pytest

from ledgerd.launch import serve_process
from ledgerd.launch.serve_process import free_port


def ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_a_free_port_lies_below_the_range_outgoing_connections_take_ports_from() -> None:
    for _ in range(50):
        assert 1024 <= free_port() < ephemeral_low()


def test_a_free_port_binds() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))


def test_no_pick_lands_on_an_earlier_pick_or_the_worker_ports_above_it() -> None:
    """A server launched but not listening yet leaves its port free to a probe: the next
    pick must still avoid it and the ports its API workers take (port + index)."""
    picks = [free_port() for _ in range(300)]
    for i, port in enumerate(picks):
        for earlier in picks[:i]:
            assert not earlier <= port <= earlier + 8, (earlier, port)


def test_a_port_someone_listens_on_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a range of 20 ports where all but one have a listener, the pick is that one."""
    low = free_port()
    monkeypatch.setattr(serve_process, "_listener_ports", lambda: (low, low + 20 + 8))
    monkeypatch.setattr(serve_process, "_RECENT", deque(maxlen=512))
    listeners = []
    try:
        for port in range(low, low + 20):
            if port != low + 7:
                sock = socket.socket()
                listeners.append(sock)
                try:
                    sock.bind(("127.0.0.1", port))
                    sock.listen()
                except OSError:
                    pass  # someone else listens there: taken all the same
        assert serve_process.free_port() == low + 7
    finally:
        for sock in listeners:
            sock.close()
