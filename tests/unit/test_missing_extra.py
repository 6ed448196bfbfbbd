"""A mysql:// store URL without the ``mysql`` extra: one clear line naming the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ledgerd.cli import main
from ledgerd.errors import MissingExtra
from ledgerd.store import open_store

URL = "mysql://ledgerd:secret@127.0.0.1:3306/ledgerd"


def hide_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make ``import name`` fail as if it were not installed (and re-import its users)."""
    monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: ModuleNotFoundError
    for loaded in ("ledgerd.store.mysql", "ledgerd.store.sql.mysql_dialect"):
        monkeypatch.delitem(sys.modules, loaded, raising=False)


def test_open_store_names_the_extra_when_the_driver_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """open_store raises MissingExtra with the pip command that installs the driver."""
    hide_module(monkeypatch, "MySQLdb")
    with pytest.raises(MissingExtra) as raised:
        open_store(URL)
    assert raised.value.extra == "mysql"
    assert "pip install 'ledgerd[mysql]'" in str(raised.value)
    assert "secret" not in str(raised.value)


def test_a_broken_driver_install_is_not_reported_as_a_missing_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the driver's own absence means a missing extra; another missing module still raises."""
    hide_module(monkeypatch, "MySQLdb.constants")
    with pytest.raises(ModuleNotFoundError):
        open_store(URL)


# `serve` (which configures process-wide logging) is run as a real process by tests/package.
@pytest.mark.parametrize("command", ["migrate", "audit"])
def test_cli_prints_one_line_and_exits_2(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A command that opens the store ends with exit code 2 and one line, no traceback."""
    hide_module(monkeypatch, "MySQLdb")
    monkeypatch.setenv("LEDGERD_STORE_URL", URL)
    monkeypatch.setenv("LEDGERD_DATA_DIR", str(tmp_path))
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err == (
        "ledgerd: a mysql:// store URL needs the MySQL driver (mysqlclient), which is not"
        " installed: pip install 'ledgerd[mysql]'\n"
    )
