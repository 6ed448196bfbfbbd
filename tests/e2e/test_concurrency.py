"""Many clients on few hot accounts: final balances equal a reference model."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import grpc
from e2e_support import Model, balance_of, change, final_status, new_user
from harness import ServerProcess, wait_until

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

CLIENTS = 16
CHANGES_PER_CLIENT = 60
KINDS = [pb.DEPOSIT] * 5 + [pb.WITHDRAW] * 2 + [pb.FREEZE] * 2 + [pb.UNFREEZE]


def test_concurrent_clients_on_hot_accounts_match_the_model(server: ServerProcess) -> None:
    """16 clients x 60 changes over 3 accounts: balances equal the sum of APPLIED changes."""
    users = [new_user() for _ in range(3)]

    def client(seed: int) -> list[pb.ChangeBalanceRequest]:
        rng = random.Random(seed)
        sent = []
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            for _ in range(CHANGES_PER_CLIENT):
                request = change(
                    rng.choice(users),
                    rng.choice(KINDS),
                    f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}",
                    wait=rng.random() < 0.3,
                )
                result = stub.ChangeBalance(request, timeout=30)
                assert result.request_id == request.request_id
                sent.append(request)
        return sent

    with ThreadPoolExecutor(CLIENTS) as pool:
        sent = [r for batch in pool.map(client, range(CLIENTS)) for r in batch]

    model = Model()
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        statuses = {r.request_id: final_status(stub, r.request_id).status for r in sent}
        assert set(statuses.values()) <= {pb.APPLIED, pb.REJECTED}
        for request in sent:
            if statuses[request.request_id] == pb.APPLIED:
                model.apply(request)
        applied = sum(1 for s in statuses.values() if s == pb.APPLIED)
        versions = 0
        for user in users:
            balance = balance_of(stub, user)
            assert Decimal(balance.available) == model.available[(user, "USD")]
            assert Decimal(balance.frozen) == model.frozen[(user, "USD")]
            versions += balance.version
    assert versions == applied
    report = server.audit()
    assert report["ok"], report["problems"]


def test_the_harness_audit_reports_what_ledgerd_audit_json_prints(server: ServerProcess) -> None:
    """The in-process audit the harness runs (harness.auditing) gives the CLI's JSON
    document, on every stack (the sharded one with its per-shard reports), here on the
    store the test above left; they agree once the relay has no rows left to move."""
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def agree() -> dict[str, Any] | None:
        seen.append((server.audit(), server.audit_cli()))
        harness_report, cli_report = seen[-1]
        return harness_report if harness_report == cli_report else None

    try:
        report = wait_until(agree, 30.0, "the harness's audit and `ledgerd audit --json` agree")
    except AssertionError:
        assert seen[-1][0] == seen[-1][1]  # pytest shows the difference
        raise
    assert report["journal_entries"] > 0
    assert ("shards" in report) == ("LEDGERD_STORE_SHARDS" in server.env)
