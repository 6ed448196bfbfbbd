"""Balances as of a moment or a version, and statements, read from the journal.

"Time" is the applying consumer's clock (``applied_at_ms``), and an account's entries
are in version order: the account as of a moment is the version cut of
``Store.journal_version_before``, so an opening balance plus a statement's entries is its
closing balance exactly, version by version (docs/api.md, *Time*). These reads never
touch the cache or the consumer's memory: the live GetBalance path stays as it is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from ledgerd.domain.model import Account, Balance, JournalEntry
from ledgerd.errors import InvalidArgument
from ledgerd.store.base import Store

MAX_STATEMENT_PAGE = 1000
DEFAULT_STATEMENT_PAGE = 100
# Moments are signed 64-bit milliseconds (the journal's BIGINT applied_at_ms).
MAX_UNIX_MS = 2**63 - 1
# The page token's format, first in it: a later format can tell its own tokens apart.
_RANGE_FORMAT = "s1"


@dataclass(frozen=True, slots=True)
class AsOfBalance:
    """An account's balance right after one of its journal entries (zeros at version 0)."""

    balance: Balance
    applied_at_ms: int  # when that entry was applied; 0 at version 0


@dataclass(frozen=True, slots=True)
class StatementRange:
    """Which versions a statement covers: (opening_version, closing_version], read from
    after ``after_version`` on. A page token carries it, so later pages cost no time lookup
    and every page of one statement agrees even while the account moves on."""

    user_id: int
    currency: str
    from_ms: int
    to_ms: int
    opening_version: int
    closing_version: int
    after_version: int

    def token(self) -> str:
        fields = (
            _RANGE_FORMAT,
            self.user_id,
            self.currency,
            self.from_ms,
            self.to_ms,
            self.opening_version,
            self.closing_version,
            self.after_version,
        )
        text = ":".join(str(f) for f in fields)
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class StatementPage:
    opening: AsOfBalance
    closing: AsOfBalance
    entries: Sequence[JournalEntry]
    next_page_token: str  # "" on the last page


def validate_moment(field: str, unix_ms: int) -> int:
    if unix_ms < 0:
        raise InvalidArgument(field, "must be a Unix time in milliseconds, 0 or more")
    return unix_ms


def validate_statement_page_size(page_size: int) -> int:
    """0 means the default; more than the maximum is read as the maximum (AIP-158)."""
    return min(page_size, MAX_STATEMENT_PAGE) if page_size else DEFAULT_STATEMENT_PAGE


def parse_page_token(
    token: str, user_id: int, currency: str, from_ms: int, to_ms: int
) -> StatementRange:
    """The range a ``next_page_token`` continues; it must come from the same statement.

    Raises:
        InvalidArgument: on ``page_token``, when it is not one, or is another statement's.
    """
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, user, cur, start, end, opening, closing, after = text.split(":")
        found = StatementRange(
            int(user), cur, int(start), int(end), int(opening), int(closing), int(after)
        )
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgument("page_token", "is not a page token of GetStatement") from exc
    if prefix != _RANGE_FORMAT or not (
        found.opening_version <= found.after_version < found.closing_version
    ):
        raise InvalidArgument("page_token", "is not a page token of GetStatement")
    if (found.user_id, found.currency, found.from_ms, found.to_ms) != (
        user_id,
        currency,
        from_ms,
        to_ms,
    ):
        raise InvalidArgument(
            "page_token", "belongs to another statement (user_id, currency, from or to differ)"
        )
    return found


class JournalHistory:
    """As-of balances and statements from the store's journal; async (the store runs in a
    thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def balances_at(
        self, user_id: int, currency: str | None, at_ms: int
    ) -> Sequence[AsOfBalance]:
        """The balances right after every change applied at or before ``at_ms``: one
        currency (zeros when untouched then), or each currency the user had by then."""
        return await asyncio.to_thread(self._balances_at, user_id, currency, at_ms)

    async def balance_at_version(self, account: Account, version: int) -> AsOfBalance:
        """The balance right after the account's change ``version`` (its latest when it has
        fewer; zeros at 0)."""
        return await asyncio.to_thread(self._at_version, account, version)

    async def statement(
        self,
        account: Account,
        from_ms: int,
        to_ms: int,
        page_size: int,
        continued: StatementRange | None,
    ) -> StatementPage:
        """One page of the account's statement over [from_ms, to_ms)."""
        return await asyncio.to_thread(
            self._statement, account, from_ms, to_ms, page_size, continued
        )

    def _balances_at(self, user_id: int, currency: str | None, at_ms: int) -> list[AsOfBalance]:
        before_ms = min(at_ms, MAX_UNIX_MS - 1) + 1  # at_ms itself is included
        if currency is not None:
            return [self._before(Account(user_id, currency), before_ms)]
        found = (
            self._before(Account(user_id, b.currency), before_ms)
            for b in self._store.get_balances(user_id, None)
        )
        return [b for b in found if b.balance.version > 0]

    def _before(self, account: Account, before_ms: int) -> AsOfBalance:
        version = self._store.journal_version_before(account.user_id, account.currency, before_ms)
        return self._exact(account, version)

    def _at_version(self, account: Account, version: int) -> AsOfBalance:
        if version == 0:
            return _zeros(account)
        found = self._store.get_journal(account.user_id, account.currency, version - 1, 1)
        if found and found[0].version == version:
            return _after(found[0])
        # Fewer versions than asked: the latest (the cut after its last entry).
        latest = self._store.journal_version_before(account.user_id, account.currency, MAX_UNIX_MS)
        return self._exact(account, latest)

    def _exact(self, account: Account, version: int) -> AsOfBalance:
        """The balance after ``version``, which the account's journal holds (or 0)."""
        if version == 0:
            return _zeros(account)
        (entry,) = self._store.get_journal(account.user_id, account.currency, version - 1, 1)
        return _after(entry)

    def _statement(
        self,
        account: Account,
        from_ms: int,
        to_ms: int,
        page_size: int,
        continued: StatementRange | None,
    ) -> StatementPage:
        user_id, currency = account.user_id, account.currency
        if continued is None:
            opening = self._store.journal_version_before(user_id, currency, from_ms)
            closing = self._store.journal_version_before(user_id, currency, to_ms)
            continued = StatementRange(user_id, currency, from_ms, to_ms, opening, closing, opening)
        after = continued.after_version
        limit = min(page_size, continued.closing_version - after)
        entries = self._store.get_journal(user_id, currency, after, limit) if limit > 0 else []
        last = entries[-1].version if entries else continued.closing_version
        next_token = ""
        if last < continued.closing_version:
            next_token = StatementRange(
                user_id,
                currency,
                from_ms,
                to_ms,
                continued.opening_version,
                continued.closing_version,
                last,
            ).token()
        return StatementPage(
            self._exact(account, continued.opening_version),
            self._exact(account, continued.closing_version),
            entries,
            next_token,
        )


def _zeros(account: Account) -> AsOfBalance:
    return AsOfBalance(Balance(account.user_id, account.currency, 0, 0, 0), 0)


def _after(entry: JournalEntry) -> AsOfBalance:
    return AsOfBalance(entry.balance_after, entry.applied_at_ms)
