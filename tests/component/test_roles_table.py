"""The table of roles: which components a process's settings give it, in start order."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledgerd.api.role import authenticator
from ledgerd.app import Ledgerd
from ledgerd.settings import ENV_PREFIX, Settings
from ledgerd.wiring.backends import open_backends


@pytest.fixture
def names_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Builds a process over embedded backends from the given settings (nothing started)
    and returns its supervisor's component names."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    opened = []

    def names(**overrides: object) -> list[str]:
        settings = Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]
        backends = open_backends(settings)
        opened.append(backends)
        return Ledgerd.build(settings, backends, authenticator(settings)).supervisor.names

    yield names
    for backends in opened:
        backends.close()


def test_every_role_declares_its_components_in_start_order(names_for: Any) -> None:
    """One process with every role: leader lock, audit, relay, the hold expiry sweep (which
    hands the relay what it sends), event publisher, consumer, acceptor, then the listeners
    (whose loop is grpc-health) last."""
    assert names_for() == [
        "leader:outbox",
        "audit",
        "relay",
        "hold-expiry",
        "events",
        "consumer",
        "acceptor",
        "grpc-health",
    ]


def test_a_consumer_process_hands_credits_to_a_relay_but_runs_no_audit(names_for: Any) -> None:
    """Consumer role alone: a relay (for a transfer's credits) without the outbox lock,
    and no audit job, which belongs to the relay role."""
    names = names_for(start_api=False, start_relay=False, events=False)
    assert names == ["relay", "consumer"]


def test_the_audit_job_runs_with_the_relay_role(names_for: Any) -> None:
    """Relay role alone: the outbox lock, the audit job it gates, the relay, and the hold
    expiry sweep (gated by the same lock)."""
    names = names_for(start_api=False, start_consumer=False)
    assert names == ["leader:outbox", "audit", "relay", "hold-expiry"]


def test_an_api_only_process_runs_a_relay_for_its_own_rows(names_for: Any) -> None:
    """API role alone: the relay publishing its accepted rows, the acceptor, the listeners."""
    names = names_for(start_relay=False, start_consumer=False)
    assert names == ["relay", "acceptor", "grpc-health"]
