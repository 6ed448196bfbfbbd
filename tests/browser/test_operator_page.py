"""The operator's page at ``/`` of the operations port, in a headless Chromium, on each
stack: it loads cleanly, every panel shows the running server's data, the lookups and
the event tail work."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from cdp import Browser
from harness import ServerProcess

from ledgerd.client import LedgerdClient
from ledgerd.v1 import balance_pb2 as pb

PANELS = [
    "health-panel",
    "charts-panel",
    "partitions-panel",
    "outbox-panel",
    "dlq-panel",
    "locks-panel",
    "audit-panel",
    "events-panel",
]
LONG_MEMO = "invoice 2026-12 for the whole of the winter season, paid in full"
TIMEOUT_S = 20.0


def _new_user() -> int:
    return uuid.uuid4().int % 10**12 + 1


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _open_live(browser: Browser, page_url: str) -> None:
    browser.open(page_url)
    for panel in PANELS:
        browser.wait_for(
            f"document.getElementById({json.dumps(panel)}).dataset.live === 'true'",
            TIMEOUT_S,
            f"{panel} filled",
        )


def _committed_total(browser: Browser) -> int:
    cells = browser.evaluate(
        "[...document.querySelectorAll('#partitions tbody tr')]"
        ".map(r => r.cells[2].textContent.replaceAll(',', ''))"
    )
    return sum(int(cell) for cell in cells)


def _lookup(browser: Browser, form: str, fields: dict[str, str]) -> str:
    browser.evaluate("document.getElementById('lookup-result').dataset.state = ''")
    for name, value in fields.items():
        browser.fill(f"#{form} [name={name}]", value)
    browser.submit(f"#{form}")
    browser.wait_for(
        "document.getElementById('lookup-result').dataset.state === 'done'",
        TIMEOUT_S,
        f"{form} answered",
    )
    return browser.text("#lookup-result")


def test_page_loads_without_console_errors(browser: Browser, page_url: str) -> None:
    """Every panel fills, and neither the page nor the browser reports an error (a script
    or style refused by the page's CSP would be one)."""
    # The browser is shared by both stacks: the last stack's page, whose server has
    # stopped, may still be polling it (net::ERR_CONNECTION_REFUSED once in make test).
    # Leave that page first; its errors are in by the time about:blank has loaded.
    browser.open("about:blank")
    browser.errors.clear()
    _open_live(browser, page_url)
    browser.wait_for(
        "document.getElementById('rate-chart').dataset.points > 0", TIMEOUT_S, "a chart drawn"
    )
    assert browser.errors == []


def test_each_panel_shows_the_running_servers_data(
    browser: Browser, page_url: str, server: ServerProcess, client: LedgerdClient
) -> None:
    """Health names the backends; partitions follow committed offsets as changes apply;
    outbox, DLQ, the outbox lock held by this process, the audit's result and the charts
    all show values."""
    _open_live(browser, page_url)
    before = _committed_total(browser)
    user = _new_user()
    for n in range(3):
        client.change("DEPOSIT", user, "USD", "1", request_id=_new_id(f"panel{n}"), wait=True)
    browser.wait_for(
        f"[...document.querySelectorAll('#partitions tbody tr')]"
        f".map(r => +r.cells[2].textContent.replaceAll(',', '')).reduce((a, b) => a + b, 0)"
        f" >= {before + 3}",
        TIMEOUT_S,
        "the partitions' committed offsets to move by the 3 changes",
    )
    assert browser.text("#status") == "SERVING"
    assert f"pid {server.process.pid if server.process else 0}" in browser.text("#process")
    health = browser.text("#health")
    for component in ("store", "log", "cache", "consumer", "component:relay"):
        assert component in health
    partitions = browser.evaluate("document.querySelectorAll('#partitions tbody tr').length")
    assert partitions == 3  # the default partition count
    assert "this process" in browser.text("#partitions")
    outbox = browser.text("#outbox")
    assert "backlog" in outbox
    assert "oldest unfinished" in outbox
    assert "messages0" in browser.text("#dlq").replace(" ", "")
    locks = browser.text("#locks")
    assert "outbox" in locks
    assert "this process" in locks
    audit = browser.wait_for(
        "document.getElementById('audit').textContent.startsWith('resultok')",
        TIMEOUT_S,
        "the periodic audit's result",
    )
    assert audit
    assert browser.evaluate("document.querySelector('#rate-chart polyline') !== null")
    assert browser.evaluate("document.querySelector('#lag-chart polyline') !== null")


def test_account_lookup_shows_balances_and_recent_journal(
    browser: Browser, page_url: str, client: LedgerdClient
) -> None:
    """Balances in every currency of the user, and the newest journal entries first."""
    _open_live(browser, page_url)
    user = _new_user()
    first, second = _new_id("acct"), _new_id("acct")
    client.change("DEPOSIT", user, "USD", "100.25", request_id=first, wait=True)
    client.change("FREEZE", user, "USD", "0.25", request_id=second, wait=True)
    client.change("DEPOSIT", user, "EUR", "7", request_id=_new_id("acct"), wait=True)
    shown = _lookup(browser, "account-form", {"user_id": str(user), "currency": ""})
    assert f"balances of user {user}" in shown
    rows = browser.evaluate(
        "[...document.querySelectorAll('#lookup-result table')[0].tBodies[0].rows]"
        ".map(r => [...r.cells].map(c => c.textContent))"
    )
    assert sorted(rows) == sorted(
        [[str(user), "EUR", "7", "0", "1"], [str(user), "USD", "100", "0.25", "2"]]
    )
    journal = browser.evaluate(
        "[...document.querySelectorAll('#lookup-result table')[1].tBodies[0].rows]"
        ".map(r => r.cells[1].textContent)"
    )
    assert len(journal) == 3
    assert journal.index(second) < journal.index(first)  # newest first


def test_request_lookup_shows_its_status_and_a_cut_memo(
    browser: Browser, page_url: str, client: LedgerdClient
) -> None:
    """GetChange's answer, with the memo cut short: the page never shows a full memo."""
    _open_live(browser, page_url)
    user, request_id = _new_user(), _new_id("req")
    client.change("DEPOSIT", user, "USD", "5", request_id=request_id, wait=True, memo=LONG_MEMO)
    shown = _lookup(browser, "request-form", {"request_id": request_id})
    assert f"request {request_id}" in shown
    assert "statusAPPLIED" in shown
    assert "typeDEPOSIT" in shown
    assert "amount5" in shown
    assert LONG_MEMO not in shown
    assert LONG_MEMO[:24] + "…" in shown


def test_request_lookup_of_an_unknown_id_says_not_found(browser: Browser, page_url: str) -> None:
    _open_live(browser, page_url)
    assert _lookup(browser, "request-form", {"request_id": _new_id("absent")}) == "not found"


def test_transfer_lookup_shows_both_sides(
    browser: Browser, page_url: str, client: LedgerdClient
) -> None:
    """The transfer's status, users and amount, and both balances after it."""
    _open_live(browser, page_url)
    payer, payee, transfer_id = _new_user(), _new_user(), _new_id("xfer")
    client.change("DEPOSIT", payer, "USD", "10", request_id=_new_id("fund"), wait=True)
    done = client.transfer(payer, payee, "USD", "4", request_id=transfer_id, wait=True)
    assert done.status == pb.APPLIED
    shown = _lookup(browser, "transfer-form", {"transfer_id": transfer_id})
    assert f"transfer {transfer_id}" in shown
    assert "statusAPPLIED" in shown
    assert f"from user id{payer}" in shown
    assert f"to user id{payee}" in shown
    balances = browser.evaluate(
        "[...document.querySelectorAll('#lookup-result table')[0].tBodies[0].rows]"
        ".map(r => [r.cells[0].textContent, r.cells[2].textContent])"
    )
    assert balances == [[str(payer), "6"], [str(payee), "4"]]


def test_event_tail_shows_a_change_made_during_the_test(
    browser: Browser, page_url: str, client: LedgerdClient
) -> None:
    """Once the tail is live, a change applied afterwards appears in it with its amounts."""
    _open_live(browser, page_url)
    user, request_id = _new_user(), _new_id("tail")
    client.change("DEPOSIT", user, "USD", "3.5", request_id=request_id, wait=True, memo=LONG_MEMO)
    row = browser.wait_for(
        f"[...document.querySelectorAll('#events tbody tr')]"
        f".map(r => [...r.cells].map(c => c.textContent))"
        f".find(cells => cells[2] === {json.dumps(request_id)})",
        TIMEOUT_S,
        "the change in the event tail",
    )
    assert row[3:8] == [str(user), "USD", "DEPOSIT", "3.5", "3.5"]
    assert row[10] == LONG_MEMO[:24] + "…"


def test_screenshot_of_the_page(
    browser: Browser, page_url: str, stack: str, client: LedgerdClient, tmp_path: Path
) -> None:
    """A PNG of the whole page with some traffic in it (docs/operations.md's pictures come
    from here: set LEDGERD_TEST_SCREENSHOT_DIR to keep them)."""
    _open_live(browser, page_url)
    user = _new_user()
    client.change_many(
        [
            pb.ChangeBalanceRequest(
                request_id=_new_id("shot"),
                user_id=user,
                currency="USD",
                type=pb.DEPOSIT,
                amount="1",
                memo="top-up",
            )
            for _ in range(200)
        ],
        wait=True,
    )
    browser.wait_for(
        "[...document.querySelectorAll('#events tbody tr')].length >= 20",
        TIMEOUT_S,
        "events in the tail",
    )
    _lookup(browser, "account-form", {"user_id": str(user), "currency": "USD"})
    browser.wait_for(
        "document.getElementById('rate-chart').dataset.points >= 2", TIMEOUT_S, "two samples"
    )
    keep = os.environ.get("LEDGERD_TEST_SCREENSHOT_DIR")
    path = (Path(keep) if keep else tmp_path) / f"operator-page-{stack}.png"
    browser.screenshot(path)
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    assert width >= 1000
    assert height >= 800
