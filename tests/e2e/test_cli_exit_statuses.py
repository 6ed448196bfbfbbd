"""The ``ledgerd`` client commands against a real server: exit statuses and the deadline.

The exit statuses do not depend on the stack, so one embedded server serves them all.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import new_request_id, new_user
from harness import ServerProcess, wait_until

from ledgerd.cli import main
from ledgerd.cli.exit_codes import ExitCode


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ledgerd")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def stalled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that accepts changes but never applies them: no consumer runs."""
    process = ServerProcess(
        tmp_path_factory.mktemp("stalled"), {"LEDGERD_START_CONSUMER": "false"}
    ).start()
    yield process
    process.stop()


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """An address that accepts TCP connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()
    thread.join(timeout=5)


def test_timeout_bounds_the_whole_command_against_a_silent_peer(
    silent_peer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--timeout 3 ends the command, retries included, in about 3 s (not 4 attempts x 3 s),
    exit 1, saying who did not answer within what."""
    started = time.monotonic()
    code = main(["balance", "7", "USD", "--addr", silent_peer, "--timeout", "3"])
    took_s = time.monotonic() - started
    assert code == ExitCode.ERROR
    error = capsys.readouterr().err
    assert f"DEADLINE_EXCEEDED: no answer from {silent_peer} within --timeout 3 s" in error
    # Generous: each retry would add another 3 s; the point is that none is made.
    assert took_s < 3 + 5, f"took {took_s:.1f} s"


def test_an_applied_change_exits_0(server: ServerProcess) -> None:
    done = server.run_cli("change", "deposit", str(new_user()), "USD", "5", "--wait")
    assert done.returncode == ExitCode.OK, done.stderr
    assert json.loads(done.stdout)["status"] == "APPLIED"


def test_a_rejected_change_exits_3_and_so_does_get_change(server: ServerProcess) -> None:
    """Withdrawing from an empty account is REJECTED: exit 3, and the answer still printed."""
    request_id = new_request_id()
    done = server.run_cli(
        "change", "withdraw", str(new_user()), "USD", "5", "--wait", "--request-id", request_id
    )
    assert done.returncode == ExitCode.REJECTED, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["reject_reason"]) == ("REJECTED", "INSUFFICIENT_AVAILABLE")
    looked_up = server.run_cli("get-change", request_id)
    assert looked_up.returncode == ExitCode.REJECTED, looked_up.stderr


def test_get_change_of_an_applied_change_exits_0(server: ServerProcess) -> None:
    request_id = new_request_id()
    done = server.run_cli(
        "change", "deposit", str(new_user()), "USD", "1", "--wait", "--request-id", request_id
    )
    assert done.returncode == ExitCode.OK, done.stderr
    looked_up = server.run_cli("get-change", request_id)
    assert looked_up.returncode == ExitCode.OK, looked_up.stderr
    assert json.loads(looked_up.stdout)["status"] == "APPLIED"


def test_an_unknown_change_exits_1_with_not_found(server: ServerProcess) -> None:
    done = server.run_cli("get-change", new_request_id())
    assert done.returncode == ExitCode.ERROR
    assert "error: NOT_FOUND" in done.stderr


def test_input_the_server_refuses_exits_2_naming_every_field(server: ServerProcess) -> None:
    """A lower-case currency and a zero amount pass the command line but not the server:
    INVALID_ARGUMENT, exit 2, one line per bad field."""
    done = server.run_cli("change", "deposit", str(new_user()), "usd", "0")
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith("error: INVALID_ARGUMENT: ")
    fields = [line.split(":")[0].strip() for line in done.stderr.splitlines()[1:]]
    assert fields == ["currency", "amount"]


def test_a_change_still_in_flight_exits_4_when_waited_for_else_0(
    stalled_server: ServerProcess,
) -> None:
    """Nothing applies it: accepted without --wait is success (0); with --wait, or looked up
    with get-change, it is not final (4)."""
    user, request_id = str(new_user()), new_request_id()
    accepted = stalled_server.run_cli(
        "change", "deposit", user, "USD", "1", "--request-id", request_id
    )
    assert accepted.returncode == ExitCode.OK, accepted.stderr
    assert json.loads(accepted.stdout)["status"] in ("PENDING", "SENT")
    waited = stalled_server.run_cli(
        "change", "deposit", user, "USD", "1", "--request-id", request_id, "--wait",
        "--timeout", "2",
    )  # fmt: skip
    assert waited.returncode == ExitCode.NOT_FINAL, waited.stderr
    looked_up = stalled_server.run_cli("get-change", request_id)
    assert looked_up.returncode == ExitCode.NOT_FINAL, looked_up.stderr


def test_bench_help_still_works(tmp_path: Path) -> None:
    """`ledgerd bench --help` prints bench's options in a real process (nothing is run)."""
    done = ServerProcess(tmp_path).run_cli("bench", "--help")
    assert done.returncode == 0, done.stderr
    assert "--scenario" in done.stdout and "--compare" in done.stdout


def test_an_expected_failure_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """`ledgerd audit` of a store never migrated: StoreUnavailable in one line, no traceback."""
    done = ServerProcess(tmp_path).run_cli("audit")
    assert done.returncode == ExitCode.ERROR
    assert done.stderr.splitlines()[-1].startswith("ledgerd: StoreUnavailable: ")
    assert "Traceback" not in done.stderr


def deposited(server: ServerProcess, amount: str) -> str:
    """A new user with ``amount`` USD applied."""
    user = str(new_user())
    done = server.run_cli("change", "deposit", user, "USD", amount, "--wait")
    assert done.returncode == ExitCode.OK, done.stderr
    return user


def test_a_transfer_exits_with_its_outcome_and_so_does_get_transfer(
    server: ServerProcess,
) -> None:
    """A funded transfer waited for is APPLIED (0) with both balances moved; one beyond the
    balance is REJECTED (3); get-transfer exits the same; an unknown one is NOT_FOUND (1)."""
    source, destination, request_id = deposited(server, "5"), str(new_user()), new_request_id()
    done = server.run_cli(
        "transfer", "--request-id", request_id, "--from-user", source, "--to-user", destination,
        "--currency", "USD", "--amount", "2", "--memo", "rent", "--wait",
    )  # fmt: skip
    assert done.returncode in (ExitCode.OK, ExitCode.NOT_FINAL), done.stderr
    looked_up = wait_until(
        lambda: (r := server.run_cli("get-transfer", request_id)).returncode == ExitCode.OK and r,
        30,
        "the transfer APPLIED",
    )
    assert json.loads(looked_up.stdout)["transfer"]["status"] == "APPLIED"
    balance = json.loads(server.run_cli("balance", destination, "USD").stdout)
    assert balance["balances"][0]["available"] == "2"
    short = server.run_cli(
        "transfer", "--from-user", source, "--to-user", destination, "--currency", "USD",
        "--amount", "100", "--wait",
    )  # fmt: skip
    assert short.returncode == ExitCode.REJECTED, short.stderr
    assert json.loads(short.stdout)["transfer"]["reject_reason"] == "INSUFFICIENT_AVAILABLE"
    missing = server.run_cli("get-transfer", new_request_id())
    assert missing.returncode == ExitCode.ERROR and "error: NOT_FOUND" in missing.stderr


def test_a_transfer_to_its_own_source_exits_2_naming_the_field(server: ServerProcess) -> None:
    user = str(new_user())
    done = server.run_cli(
        "transfer", "--from-user", user, "--to-user", user, "--currency", "USD", "--amount", "1"
    )
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith("error: INVALID_ARGUMENT: to_user_id")


def test_a_transfer_in_flight_exits_4_when_waited_for_else_0(
    stalled_server: ServerProcess,
) -> None:
    """Nothing applies it: accepted (0) without --wait; not final (4) with --wait, and for
    get-transfer."""
    request_id = new_request_id()
    transfer = [
        "transfer", "--request-id", request_id, "--from-user", str(new_user()),
        "--to-user", str(new_user()), "--currency", "USD", "--amount", "1",
    ]  # fmt: skip
    accepted = stalled_server.run_cli(*transfer)
    assert accepted.returncode == ExitCode.OK, accepted.stderr
    assert json.loads(accepted.stdout)["transfer"]["status"] in ("PENDING", "SENT")
    waited = stalled_server.run_cli(*transfer, "--wait", "--timeout", "2")
    assert waited.returncode == ExitCode.NOT_FINAL, waited.stderr
    looked_up = stalled_server.run_cli("get-transfer", request_id)
    assert looked_up.returncode == ExitCode.NOT_FINAL, looked_up.stderr


def test_an_atomic_batch_applies_all_or_rejects_all(server: ServerProcess, tmp_path: Path) -> None:
    """`batch --atomic --wait`: a settlement that fits is APPLIED (0), SPEND_FROZEN included;
    one leg short rejects every leg (3) and changes nothing."""
    user = deposited(server, "10")
    assert server.run_cli("change", "freeze", user, "USD", "4", "--wait").returncode == 0

    def batch(*legs: tuple[str, str, str]) -> subprocess.CompletedProcess[str]:
        lines = [
            json.dumps({"user_id": user, "currency": currency, "type": kind, "amount": amount})
            for kind, currency, amount in legs
        ]
        changes = tmp_path / f"{new_request_id()}.jsonl"
        changes.write_text("\n".join(lines) + "\n")
        return server.run_cli("batch", str(changes), "--atomic", "--wait")

    settled = batch(("SPEND_FROZEN", "USD", "3"), ("DEPOSIT", "BTC", "0.5"))
    assert settled.returncode == ExitCode.OK, settled.stderr
    assert [r["status"] for r in json.loads(settled.stdout)["results"]] == ["APPLIED"] * 2
    short = batch(("WITHDRAW", "USD", "1"), ("SPEND_FROZEN", "USD", "2"))
    assert short.returncode == ExitCode.REJECTED, short.stderr
    assert {r["reject_reason"] for r in json.loads(short.stdout)["results"]} == {
        "INSUFFICIENT_FROZEN"
    }
    balance = json.loads(server.run_cli("balance", user, "USD").stdout)["balances"][0]
    assert (balance["available"], balance["frozen"]) == ("6", "1")
