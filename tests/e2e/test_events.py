"""Change events out, end to end: applied changes come back through TailEvents, the client
and ``ledgerd events tail``, on the embedded and the production stack."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import grpc
import pytest
from e2e_support import new_user
from harness import ServerProcess, wait_for

from ledgerd.client import EventStream, LedgerdClient, LedgerdRpcError
from ledgerd.v1 import balance_pb2 as pb


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[LedgerdClient]:
    with LedgerdClient(server.target, timeout_s=30.0) as client:
        yield client


def events_of(stream: EventStream, user_id: int, count: int) -> list[pb.BalanceEvent]:
    """The next ``count`` events of one user (the stream's timeout bounds the wait)."""
    found = []
    for event in stream:
        if event.entry.user_id == user_id:
            found.append(event)
            if len(found) == count:
                break
    return found


def test_events_from_the_beginning_hold_each_applied_change_in_version_order(
    client: LedgerdClient,
) -> None:
    """Every applied change is one event, in version order, with the journal's fields;
    a rejected change has none."""
    user = new_user()
    for kind, amount in (
        ("DEPOSIT", "10"),
        ("FREEZE", "4"),
        ("WITHDRAW", "100"),
        ("UNFREEZE", "1"),
    ):
        client.change(kind, user, "USD", amount, wait=True, memo=kind.lower())
    with client.tail_events(from_beginning=True, timeout_s=60.0) as stream:
        events = events_of(stream, user, 3)
    assert [(e.entry.version, pb.ChangeType.Name(e.entry.type)) for e in events] == [
        (1, "DEPOSIT"),
        (2, "FREEZE"),
        (3, "UNFREEZE"),
    ]
    last = events[-1]
    assert (last.entry.available_after, last.entry.frozen_after, last.entry.memo) == (
        "7",
        "3",
        "unfreeze",
    )
    assert [e.sequence for e in events] == sorted({e.sequence for e in events})
    assert len({e.partition for e in events}) == 1


def test_a_tail_from_now_receives_changes_made_after_it_opened(client: LedgerdClient) -> None:
    """Without from_beginning, a stream sees what is applied after tail_events returned."""
    user = new_user()
    with client.tail_events(timeout_s=60.0) as stream:
        client.change("DEPOSIT", user, "EUR", "5", wait=True)
        (event,) = events_of(stream, user, 1)
    assert (event.entry.currency, event.entry.amount, event.entry.version) == ("EUR", "5", 1)


def test_a_limit_ends_the_stream_after_that_many_events(client: LedgerdClient) -> None:
    """limit=N: the server ends the call after N events."""
    user = new_user()
    client.change("DEPOSIT", user, "USD", "1", wait=True)
    with client.tail_events(from_beginning=True, limit=1, timeout_s=60.0) as stream:
        assert len(list(stream)) == 1


def test_a_cancelled_tail_releases_its_reader(client: LedgerdClient, server: ServerProcess) -> None:
    """The server closes a stream's log reader when its client cancels."""
    open_tails = "ledgerd_event_tails_open"
    # Streams of earlier tests on this server are released asynchronously too.
    wait_for(lambda: server.metric(open_tails), 0, 30.0, "earlier tails closed")
    stream = client.tail_events(timeout_s=60.0)
    wait_for(lambda: server.metric(open_tails), 1, 30.0, "the tail open")
    stream.cancel()
    wait_for(lambda: server.metric(open_tails), 0, 30.0, "tail reader closed")


def test_cli_events_tail_prints_one_json_event_per_line(
    client: LedgerdClient, server: ServerProcess
) -> None:
    """``ledgerd events tail --from-beginning --limit N`` prints N lines of JSON events."""
    user = new_user()
    client.change("DEPOSIT", user, "GBP", "2.5", wait=True)
    with client.tail_events(from_beginning=True, timeout_s=60.0) as stream:
        events_of(stream, user, 1)  # published: the CLI below finds it
    total = 0
    with client.tail_events(from_beginning=True, timeout_s=3.0) as stream:
        try:
            for _ in stream:
                total += 1
        except LedgerdRpcError as exc:  # the timeout ends the count
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    completed = server.run_cli(
        "events", "tail", "--from-beginning", "--limit", str(total),
        "--addr", server.target, "--timeout", "60",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len(lines) == total
    (mine,) = [line for line in lines if line["entry"]["user_id"] == str(user)]
    assert mine["entry"]["amount"] == "2.5"
    assert mine["entry"]["type"] == "DEPOSIT"


def test_a_transfer_is_two_events_naming_the_transfer_and_the_other_user(
    client: LedgerdClient,
) -> None:
    """The debit and the credit of a transfer each have their event, on their user's
    partition, with transfer_id and counterparty_user_id."""
    source, destination = new_user(), new_user()
    client.change("DEPOSIT", source, "USD", "10", wait=True)
    with client.tail_events(timeout_s=60.0) as stream:
        client.transfer(source, destination, "USD", "4", request_id=f"t-{source}", wait=True)
        seen: dict[int, pb.BalanceEvent] = {}
        # The transfer's events only: the deposit's is published after its wait=true
        # answer (events follow the commit), so the tail may still see it first.
        for event in stream:
            if event.entry.transfer_id == f"t-{source}":
                seen[event.entry.user_id] = event
                if len(seen) == 2:
                    break
    debit, credit = seen[source].entry, seen[destination].entry
    assert (pb.ChangeType.Name(debit.type), debit.available_after) == ("TRANSFER_OUT", "6")
    assert (pb.ChangeType.Name(credit.type), credit.available_after) == ("TRANSFER_IN", "4")
    assert debit.transfer_id == credit.transfer_id == f"t-{source}"
    assert (debit.counterparty_user_id, credit.counterparty_user_id) == (destination, source)


def test_a_graceful_stop_ends_open_tails_with_server_stopping(
    fresh_server: ServerProcess,
) -> None:
    """SIGTERM ends an open TailEvents at once with UNAVAILABLE SERVER_STOPPING, instead of
    gRPC cancelling it when the grace period is over; the server still exits 0."""
    server = fresh_server.start()
    failures: list[LedgerdRpcError] = []
    with LedgerdClient(server.target, timeout_s=30.0) as tail_client:
        stream = tail_client.tail_events(timeout_s=120.0)
        stream.wait_positioned()

        def read() -> None:
            try:
                for _ in stream:
                    pass
            except LedgerdRpcError as exc:
                failures.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        assert server.stop() == 0
        reader.join(30.0)
    assert [(f.code(), f.reason) for f in failures] == [
        (grpc.StatusCode.UNAVAILABLE, "SERVER_STOPPING")
    ]
