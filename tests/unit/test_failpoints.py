"""Failpoints: configured by one setting, silent when off, each firing as configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from ledgerd.support import failpoints


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    failpoints.configure("")


def test_unconfigured_failpoint_does_nothing() -> None:
    """A hit on a name nobody configured neither raises nor logs."""
    with capture_logs() as logs:
        failpoints.hit("consumer.before_commit")
    assert logs == []


def test_error_action_raises_and_logs_the_name() -> None:
    """`error` raises FailpointError and logs which failpoint fired."""
    failpoints.configure("relay.after_produce=error")
    with capture_logs() as logs, pytest.raises(failpoints.FailpointError):
        failpoints.hit("relay.after_produce")
    assert logs[0]["failpoint"] == "relay.after_produce"


def test_count_limits_how_often_it_fires() -> None:
    """`2*error` fires twice, then the failpoint is off."""
    failpoints.configure("acceptor.before_commit=2*error")
    for _ in range(2):
        with pytest.raises(failpoints.FailpointError):
            failpoints.hit("acceptor.before_commit")
    failpoints.hit("acceptor.before_commit")
    assert failpoints.active() == {}


def test_sleep_action_logs_its_note() -> None:
    """`sleep(0)` returns, and its log line carries the caller's note."""
    failpoints.configure("consumer.before_commit=sleep(0)")
    with capture_logs() as logs:
        failpoints.hit("consumer.before_commit", note="holding batch before commit")
    assert logs[0]["event"] == "fault injection: holding batch before commit"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("nowhere.at_all=error", "nowhere.at_all"),
        ("consumer.before_commit=sleep", "consumer.before_commit"),
        ("consumer.before_commit=explode", "consumer.before_commit"),
    ],
)
def test_bad_spec_names_the_failpoint(spec: str, named: str) -> None:
    """A malformed setting is refused with a message naming the failpoint."""
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        failpoints.configure(spec)
