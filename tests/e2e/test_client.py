"""The Python clients: retries that keep the request_id, and the asyncio client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from e2e_support import new_user
from harness import ServerProcess, wait_until

from ledgerd.client import AsyncLedgerdClient, LedgerdClient, RetryPolicy, change_request
from ledgerd.v1 import balance_pb2 as pb


def test_client_retries_until_the_server_is_up_and_applies_once(tmp_path: Path) -> None:
    """A change sent while the server is down is retried (same request_id) and applied once."""
    server = ServerProcess(tmp_path / "late")
    user = new_user()
    results: list[pb.ChangeResult] = []
    failed_attempts: list[int] = []

    class Recording(RetryPolicy):
        """Notes each failed attempt before the client backs off to retry it."""

        def backoff_s(self, attempt: int) -> float:
            failed_attempts.append(attempt)
            return super().backoff_s(attempt)

    patient = Recording(attempts=40, first_backoff_s=0.2, max_backoff_s=0.5)

    def send() -> None:
        with LedgerdClient(server.target, retry=patient, timeout_s=5) as client:
            results.append(
                client.change("deposit", user, "USD", "7", request_id=f"late-{user}", wait=True)
            )

    sender = threading.Thread(target=send)
    sender.start()
    # The first attempts find nothing listening, and are retried.
    wait_until(lambda: len(failed_attempts) >= 2, 30, "two failed attempts of the client")
    server.start()
    try:
        sender.join(timeout=60)
        (result,) = results
        assert result.status == pb.APPLIED
        with LedgerdClient(server.target) as client:
            again = client.change("deposit", user, "USD", "7", request_id=f"late-{user}", wait=True)
            assert again.duplicate
            assert client.get_balance(user, "USD")[0].available == "7"
            assert [e.version for e in client.journal(user, "USD")] == [1]
    finally:
        server.stop()


def test_async_client_changes_and_reads(tmp_path: Path) -> None:
    """AsyncLedgerdClient changes balances in a batch and reads them back."""
    server = ServerProcess(tmp_path / "async").start()
    user = new_user()

    async def scenario() -> tuple[list[pb.ChangeResult], str, pb.HealthCheckResponse]:
        async with AsyncLedgerdClient(server.target) as client:
            results = await client.change_many(
                [
                    pb.ChangeBalanceRequest(
                        request_id=f"a1-{user}",
                        user_id=user,
                        currency="EUR",
                        type=pb.DEPOSIT,
                        amount="5",
                    ),
                    pb.ChangeBalanceRequest(
                        request_id=f"a2-{user}",
                        user_id=user,
                        currency="EUR",
                        type=pb.FREEZE,
                        amount="2",
                    ),
                ],
                wait=True,
            )
            (balance,) = await client.get_balance(user, "EUR")
            return list(results), f"{balance.available}/{balance.frozen}", await client.health()

    try:
        results, balance, health = asyncio.run(scenario())
        assert [r.status for r in results] == [pb.APPLIED, pb.APPLIED]
        assert balance == "3/2"
        assert health.status == pb.HealthCheckResponse.SERVING
    finally:
        server.stop()


def test_clients_transfer_and_settle_atomically(tmp_path: Path) -> None:
    """Both clients: transfer and get_transfer see a transfer APPLIED with both balances
    moved; change_many(atomic=True) applies a settlement all together, or rejects it all."""
    server = ServerProcess(tmp_path / "exchange").start()
    source, destination, trader = new_user(), new_user(), new_user()

    def applied(get: Callable[[], pb.Transfer]) -> pb.Transfer:
        return wait_until(lambda: (t := get()).status == pb.APPLIED and t, 30, "APPLIED")

    try:
        with LedgerdClient(server.target) as client:
            client.change("deposit", source, "USD", "10", wait=True)
            sent = client.transfer(
                source, destination, "USD", "4", request_id=f"pay-{source}", memo="rent"
            )
            assert (sent.request_id, sent.from_user_id, sent.amount) == (
                f"pay-{source}", source, "4",
            )  # fmt: skip
            assert applied(lambda: client.get_transfer(f"pay-{source}")).debited
            assert client.get_balance(destination, "USD")[0].available == "4"
            again = client.transfer(
                source, destination, "USD", "4", request_id=f"pay-{source}", memo="rent"
            )
            assert again.duplicate and client.get_balance(source, "USD")[0].available == "6"
            client.change("deposit", trader, "USD", "5", wait=True)
            client.change("freeze", trader, "USD", "5", wait=True)
            legs = [
                change_request("spend_frozen", trader, "USD", "5"),
                change_request("deposit", trader, "BTC", "1"),
            ]
            results = client.change_many(legs, atomic=True, wait=True)
            assert [r.status for r in results] == [pb.APPLIED, pb.APPLIED]

        async def with_async_client() -> tuple[list[pb.ChangeResult], pb.Transfer]:
            async with AsyncLedgerdClient(server.target) as client:
                again = [
                    change_request("spend_frozen", trader, "USD", "1"),
                    change_request("deposit", trader, "BTC", "1"),
                ]
                rejected = await client.change_many(again, atomic=True, wait=True)
                await client.transfer(destination, source, "USD", "1", request_id=f"back-{source}")
                transfer = await client.get_transfer(f"back-{source}")
                return list(rejected), transfer

        rejected, transfer = asyncio.run(with_async_client())
        assert [(r.status, r.reject_reason) for r in rejected] == [
            (pb.REJECTED, pb.INSUFFICIENT_FROZEN)
        ] * 2
        assert transfer.request_id == f"back-{source}" and transfer.to_user_id == source
        with LedgerdClient(server.target) as client:
            assert applied(lambda: client.get_transfer(f"back-{source}")).status == pb.APPLIED
            assert [b.available for b in client.get_balance(trader, "BTC")] == ["1"]
    finally:
        server.stop()
