"""TailEvents, the one streaming call, is checked like the unary ones: signed, read scope."""

from __future__ import annotations

import grpc
import pytest
from harness import ServerProcess

from ledgerd.client import LedgerdClient, LedgerdRpcError


def test_an_unsigned_tail_is_unauthenticated(signed_server: ServerProcess) -> None:
    """No signature: UNAUTHENTICATED before any event."""
    with LedgerdClient(signed_server.target) as client, pytest.raises(LedgerdRpcError) as failed:
        list(client.tail_events(from_beginning=True, limit=1, timeout_s=30.0))
    assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_wrong_secret_is_unauthenticated(signed_server: ServerProcess) -> None:
    """A signature with a secret the key does not have: UNAUTHENTICATED."""
    with (
        LedgerdClient(signed_server.target, key_id="reader", secret="guess") as client,
        pytest.raises(LedgerdRpcError) as failed,
    ):
        list(client.tail_events(from_beginning=True, limit=1, timeout_s=30.0))
    assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_read_only_key_may_tail_events(signed_server: ServerProcess) -> None:
    """TailEvents needs the read scope only: a reader's key gets the events."""
    with LedgerdClient(signed_server.target, key_id="writer", secret="new-secret") as writer:
        writer.change("DEPOSIT", 77, "USD", "1", wait=True)
    with LedgerdClient(signed_server.target, key_id="reader", secret="read-secret") as reader:
        (event,) = list(reader.tail_events(from_beginning=True, limit=1, timeout_s=30.0))
    assert event.entry.type == 1  # DEPOSIT
