"""Iterate a whole store table by keyset pages (audit, cache full sync)."""

from __future__ import annotations

from collections.abc import Iterator

from ledgerd.domain.holds import Hold
from ledgerd.domain.model import Account, Balance, JournalEntry, StoredRequest
from ledgerd.store.base import Store

PAGE_ROWS = 10_000


def iter_balances(store: Store, page_rows: int = PAGE_ROWS) -> Iterator[Balance]:
    after: Account | None = None
    while page := store.scan_balances(after, page_rows):
        yield from page
        after = page[-1].account


def iter_journal(store: Store, page_rows: int = PAGE_ROWS) -> Iterator[JournalEntry]:
    after: tuple[int, str, int] | None = None
    while page := store.scan_journal(after, page_rows):
        yield from page
        last = page[-1]
        after = (last.user_id, last.currency, last.version)


def iter_requests(store: Store, page_rows: int = PAGE_ROWS) -> Iterator[StoredRequest]:
    after: str | None = None
    while page := store.scan_requests(after, page_rows):
        yield from page
        after = page[-1].request.request_id


def iter_rejections(store: Store, page_rows: int = PAGE_ROWS) -> Iterator[StoredRequest]:
    after: str | None = None
    while page := store.scan_rejections(after, page_rows):
        yield from page
        after = page[-1].request.request_id


def iter_holds(store: Store, page_rows: int = PAGE_ROWS) -> Iterator[Hold]:
    after: str | None = None
    while page := store.scan_holds(after, page_rows):
        yield from page
        after = page[-1].hold_id
