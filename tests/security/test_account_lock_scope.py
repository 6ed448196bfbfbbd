"""Locking an account needs the `admin` scope (docs/api.md, "Locked accounts")."""

from __future__ import annotations

import grpc
import pytest
from harness import ServerProcess
from harness.load import new_request_id, new_user

from ledgerd.client import LedgerdClient, lock_request
from ledgerd.signing import Signer
from ledgerd.v1 import balance_pb2 as pb

SERVICE = "/ledgerd.v1.BalanceService/"


def test_a_write_key_cannot_lock_and_stores_nothing(signed_server: ServerProcess) -> None:
    """A valid `write` key gets PERMISSION_DENIED from LockAccount and UnlockAccount; the
    lock request is not stored (GetChange: NOT_FOUND)."""
    writer = Signer("writer", "new-secret")
    request = lock_request(new_user(), "USD", "full", request_id=new_request_id("lock"))
    body = request.SerializeToString()
    with grpc.insecure_channel(signed_server.target) as channel:
        for method, message in (
            ("LockAccount", body),
            ("UnlockAccount", pb.UnlockAccountRequest(
                request_id=new_request_id("unlock"), user_id=request.user_id, currency="USD"
            ).SerializeToString()),
        ):  # fmt: skip
            call = channel.unary_unary(SERVICE + method)
            with pytest.raises(grpc.RpcError) as denied:
                call(message, metadata=writer.headers(SERVICE + method, message), timeout=10)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with (
        LedgerdClient(signed_server.target, key_id="writer", secret="new-secret") as client,
        pytest.raises(grpc.RpcError) as missing,
    ):
        client.get_change(request.request_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_admin_key_locks_and_the_journal_names_it(signed_server: ServerProcess) -> None:
    """An `admin` key's lock applies; its journal entry names the key and the memo."""
    user = new_user()
    with LedgerdClient(signed_server.target, key_id="ops", secret="ops-secret") as ops:
        result = ops.lock_account(user, "USD", "debits", wait=True, memo="fraud review")
        assert (result.status, result.balance.lock) == (pb.APPLIED, pb.ACCOUNT_LOCK_DEBITS)
        (entry,) = ops.journal(user, "USD")
    assert (entry.type, entry.actor, entry.memo, entry.lock_after) == (
        pb.LOCK_DEBITS, "ops", "fraud review", pb.ACCOUNT_LOCK_DEBITS,
    )  # fmt: skip
