"""The ``ledgerd`` command line: help for everything, --version, usage errors, exit statuses."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import grpc
import pytest

from ledgerd.cli import build_parser, main
from ledgerd.cli.exit_codes import ExitCode, for_change, for_changes, for_rpc_error
from ledgerd.v1 import balance_pb2 as pb


def all_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` with the words that reach it, ``parser`` first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from all_parsers(child, (*path, name))


PARSERS = dict(all_parsers(build_parser()))


def test_the_walk_reaches_every_command_and_sub_subcommand() -> None:
    """The parsers walked below include the nested ones (dlq list / replay)."""
    assert {("change",), ("get-change",), ("dlq", "list"), ("dlq", "replay"), ("bench",)} <= set(
        PARSERS
    )


@pytest.mark.parametrize("path", list(PARSERS), ids=lambda path: " ".join(path) or "ledgerd")
def test_every_argument_has_help_text(path: tuple[str, ...]) -> None:
    """Each positional, option and command list of every parser says what it is."""
    parser = PARSERS[path]
    missing = [
        action.dest for action in parser._actions if not action.help or action.help.isspace()
    ]
    assert missing == [], f"ledgerd {' '.join(path)}: no help for {missing}"
    if path:
        assert parser.description, f"ledgerd {' '.join(path)} --help has no description"


@pytest.mark.parametrize("path", [p for p in PARSERS if p], ids=" ".join)
def test_every_command_prints_its_own_help(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """`ledgerd dlq list --help` is dlq list's help, not dlq's: each usage line names its path."""
    with pytest.raises(SystemExit) as stopped:
        main([*path, "--help"])
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: ledgerd {' '.join(path)} ")
    description = PARSERS[path].description
    assert description is not None
    assert " ".join(description.split()) in " ".join(shown.split())


def test_client_help_shows_defaults_and_environment_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--addr names $LEDGERD_ADDR and the built-in address; --timeout shows its default."""
    with pytest.raises(SystemExit):
        main(["change", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "$LEDGERD_ADDR" in shown
    assert "127.0.0.1:50051" in shown
    assert "every retry included (default: 15.0)" in shown
    assert "exit status:" in shown


def test_top_level_help_documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    """`ledgerd --help` ends with the table of exit statuses, one line per code."""
    with pytest.raises(SystemExit):
        main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index("exit status:") + 1 :]
    assert [int(line.split()[0]) for line in table if not line.startswith("     ")] == [
        code.value for code in ExitCode
    ]


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    """`ledgerd --version` prints the installed distribution's version and exits 0."""
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"ledgerd {metadata.version('ledgerd')}"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["balance", "0"], "argument user: must be from 1 to 18446744073709551615, not 0"),
        (["balance", "2", "--timeout", "0"], "argument --timeout: must be a finite number"),
        (["balance", "2", "--timeout", "soon"], "argument --timeout: not a number"),
        (["journal", "2", "USD", "--limit", "1001"], "argument --limit: must be from 1 to 1000"),
        (["change", "lend", "2", "USD", "1"], "argument type: invalid choice: 'lend'"),
        (["dlq", "list", "--limit", "-1"], "argument --limit: must be 1 or more"),
        (["dlq"], "the following arguments are required: ACTION"),
        (
            ["transfer", "--to-user", "2", "--currency", "USD", "--amount", "1"],
            "the following arguments are required: --from-user",
        ),
        (
            ["transfer", "--from-user", "0", "--to-user", "2", "--currency", "X", "--amount", "1"],
            "argument --from-user: must be from 1 to 18446744073709551615, not 0",
        ),
        (["change", "transfer_in", "2", "USD", "1"], "invalid choice: 'transfer_in'"),
        (["get-transfer"], "the following arguments are required: request_id"),
        (["lock", "2", "USD"], "the following arguments are required: --scope"),
        (["lock", "2", "USD", "--scope", "all"], "argument --scope: invalid choice: 'all'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed argument stops at parsing, before any call, with exit status 2."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == ExitCode.USAGE
    assert named in capsys.readouterr().err


@pytest.mark.parametrize(
    ("status", "final_expected", "code"),
    [
        (pb.APPLIED, False, ExitCode.OK),
        (pb.APPLIED, True, ExitCode.OK),
        (pb.REJECTED, False, ExitCode.REJECTED),
        (pb.REJECTED, True, ExitCode.REJECTED),
        (pb.PENDING, False, ExitCode.OK),
        (pb.PENDING, True, ExitCode.NOT_FINAL),
        (pb.SENT, True, ExitCode.NOT_FINAL),
        (pb.FAILED, True, ExitCode.NOT_FINAL),
    ],
)
def test_a_change_exits_with_its_outcome(status: int, final_expected: bool, code: int) -> None:
    """APPLIED 0, REJECTED 3; in flight is 0 when only acceptance was asked for, else 4."""
    assert for_change(status, final_expected=final_expected) == code


@pytest.mark.parametrize(
    ("rpc_code", "code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, ExitCode.USAGE),
        (grpc.StatusCode.ALREADY_EXISTS, ExitCode.USAGE),
        (grpc.StatusCode.UNAVAILABLE, ExitCode.ERROR),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ExitCode.ERROR),
        (grpc.StatusCode.NOT_FOUND, ExitCode.ERROR),
        (grpc.StatusCode.UNAUTHENTICATED, ExitCode.ERROR),
    ],
)
def test_a_failed_call_exits_2_for_bad_input_else_1(rpc_code: grpc.StatusCode, code: int) -> None:
    """Input the server refuses is a usage error (2); anything else is an error (1)."""
    assert for_rpc_error(rpc_code) == code


def test_transfer_options_fill_the_transfer_request() -> None:
    """`ledgerd transfer` takes every TransferRequest field as an option."""
    args = build_parser().parse_args(
        ["transfer", "--request-id", "t-1", "--from-user", "7", "--to-user", "9",
         "--currency", "USD", "--amount", "2.5", "--from-frozen", "--memo", "rent", "--wait"]
    )  # fmt: skip
    assert (args.request_id, args.from_user, args.to_user, args.currency, args.amount) == (
        "t-1", 7, 9, "USD", "2.5",
    )  # fmt: skip
    assert args.from_frozen and args.wait and args.memo == "rent"


def test_spend_frozen_is_a_change_type_in_any_letter_case() -> None:
    """`change SPEND_FROZEN ...` parses as spend_frozen, which the client sends by name."""
    assert build_parser().parse_args(["change", "SPEND_FROZEN", "2", "USD", "1"]).type == (
        "spend_frozen"
    )


def test_batch_takes_atomic_and_wait() -> None:
    """`ledgerd batch FILE --atomic --wait`; without FILE it reads standard input."""
    args = build_parser().parse_args(["batch", "changes.json", "--atomic", "--wait"])
    assert (args.file, args.atomic, args.wait) == ("changes.json", True, True)
    assert build_parser().parse_args(["batch"]).file == "-"


def test_batch_input_with_a_bad_item_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed item is named as the server names it, and nothing is sent."""
    changes = tmp_path / "changes.jsonl"
    good = {"user_id": "1", "currency": "USD", "type": "DEPOSIT", "amount": "1"}
    changes.write_text(json.dumps(good) + "\n" + json.dumps({**good, "amont": "2"}) + "\n")
    # An address nothing listens on: reaching the server would fail differently (exit 1).
    code = main(["batch", str(changes), "--addr", "127.0.0.1:9", "--timeout", "1"])
    assert code == ExitCode.USAGE
    assert "INVALID_ARGUMENT: changes[1].amont: unknown field" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("statuses", "final_expected", "code"),
    [
        ([pb.APPLIED, pb.APPLIED], True, ExitCode.OK),
        ([pb.PENDING, pb.PENDING], False, ExitCode.OK),
        ([pb.APPLIED, pb.PENDING], True, ExitCode.NOT_FINAL),
        ([pb.PENDING, pb.REJECTED], True, ExitCode.REJECTED),
        ([pb.REJECTED, pb.APPLIED], False, ExitCode.REJECTED),
    ],
)
def test_a_batch_exits_with_its_worst_outcome(
    statuses: list[int], final_expected: bool, code: int
) -> None:
    """Any REJECTED change: 3; else any not final when final ones were due: 4; else 0."""
    assert for_changes(statuses, final_expected=final_expected) == code
