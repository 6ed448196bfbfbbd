"""The ``ledgerd`` command line: help for everything, --version, usage errors, exit statuses."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import metadata

import grpc
import pytest

from ledgerd.cli import build_parser, main
from ledgerd.cli.exit_codes import ExitCode, for_change, for_rpc_error
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
