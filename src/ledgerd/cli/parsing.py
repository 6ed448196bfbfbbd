"""What every ``ledgerd`` (sub)command parser shares: help layout, registration, value types."""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

Handler = Callable[[argparse.Namespace], int]
# What add_subparsers() returns: argparse gives its type no public name.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, keeps epilogs' line breaks (the exit-status table).

    A default of None, False or "" means "not given" (the help says what happens then),
    so it is not shown, nor is one the help already states ("default: ..."); a list
    default reads as the comma-separated value one would type.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if (
            default is None
            or default is False
            or default == ""
            or "default:" in (action.help or "")
        ):
            return action.help
        return super()._get_help_string(action)

    def _expand_help(self, action: argparse.Action) -> str:
        if isinstance(action.default, list):
            action = copy.copy(action)
            action.default = ",".join(str(item) for item in action.default)
        return super()._expand_help(action)


def add_command(
    commands: Commands, name: str, summary: str, handler: Handler | None, **options: Any
) -> argparse.ArgumentParser:
    """A subcommand with its summary as its own help's description, running ``handler``.

    ``handler`` is None for a group whose own subcommands each set one.
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary, formatter_class=HelpFormatter, **options
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def positive_float(text: str) -> float:
    """An argument type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):  # `not >` also refuses nan
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argument type: a whole number from ``low`` up to ``high`` (None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low} or more" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {text}")
        return value

    return parse


positive_int = int_in_range(1)

# The largest moment (Unix ms) the API takes: the journal's signed 64-bit times.
MAX_UNIX_MS = 2**63 - 1


def moment(text: str) -> int:
    """An argument type: Unix milliseconds, or an ISO 8601 date or time (UTC if no offset)."""
    if text.isdigit():
        value = int(text)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not Unix milliseconds nor an ISO 8601 time: {text!r}"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = int(parsed.timestamp() * 1000)
    if not 0 <= value <= MAX_UNIX_MS:
        raise argparse.ArgumentTypeError(f"must be from 1970 on, not {text}")
    return value
