"""The dead-letters panel with a real dead letter: a record no consumer can apply,
published to the production stack's Kafka topic, shows with its reason and error and
without its body."""

from __future__ import annotations

from pathlib import Path

import pytest
from cdp import Browser
from harness import ServerProcess

from ledgerd.log import open_log

POISON = b"not a change: secret-looking memo text"
TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def stack() -> str:
    return "production"  # the page's panel is the same on both; Kafka is reachable from here


def test_dead_letters_panel_shows_a_poison_message_by_its_headers(
    browser: Browser, page_url: str, server: ServerProcess, tmp_path: Path
) -> None:
    event_log = open_log(server.env["LEDGERD_LOG_URL"], data_dir=tmp_path, partition_count=3)
    try:
        producer = event_log.producer()
        producer.publish(server.env["LEDGERD_TOPIC"], b"42", POISON)
        assert producer.flush(10.0) == 0
        producer.close()
    finally:
        event_log.close()
    browser.open(page_url)
    row = browser.wait_for(
        "[...document.querySelectorAll('#dlq-latest tbody tr')]"
        ".map(r => [...r.cells].map(c => c.textContent))[0]",
        TIMEOUT_S,
        "a dead letter on the page",
    )
    _, offset, reason, error = row
    assert (offset, reason) == ("0", "poison")
    assert error
    assert "messages1" in browser.text("#dlq").replace(" ", "")
    assert POISON.decode() not in browser.evaluate("document.body.innerHTML")
