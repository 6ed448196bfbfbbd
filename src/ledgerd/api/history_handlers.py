"""GetBalance as of a moment or version, and GetStatement: their input checks and answers,
shared by the gRPC servicer and the REST gateway (through ``Handlers``)."""

from __future__ import annotations

from ledgerd.api.convert import balance_to_proto, journal_to_proto
from ledgerd.domain.model import Account
from ledgerd.domain.validation import FieldChecks, validate_currency, validate_user_id
from ledgerd.errors import InvalidArgument
from ledgerd.history import (
    JournalHistory,
    parse_page_token,
    validate_moment,
    validate_statement_page_size,
)
from ledgerd.v1 import balance_pb2 as pb


def is_as_of(request: pb.GetBalanceRequest) -> bool:
    return request.HasField("as_of_unix_ms") or request.HasField("as_of_version")


async def get_balance_as_of(
    history: JournalHistory, request: pb.GetBalanceRequest
) -> pb.GetBalanceResponse:
    """Raises: InvalidArgument: a malformed field, both as-of fields, or a version without a
    currency."""
    fields = FieldChecks()
    user_id = fields.check(validate_user_id, request.user_id, 0)
    currency = fields.check(validate_currency, request.currency, "") if request.currency else None
    by_moment = request.HasField("as_of_unix_ms")
    if by_moment:
        at_ms = fields.check(_as_of_moment, request.as_of_unix_ms, 0)
        if request.HasField("as_of_version"):
            fields.violations.extend(
                InvalidArgument(
                    "as_of_version", "set as_of_unix_ms or as_of_version, not both"
                ).violations
            )
    elif currency is None and not fields.violations:
        fields.violations.extend(
            InvalidArgument("currency", "is required with as_of_version").violations
        )
    fields.raise_if_any()
    if by_moment:
        found = await history.balances_at(user_id, currency, at_ms)
    else:
        assert currency is not None  # checked above
        found = [
            await history.balance_at_version(Account(user_id, currency), request.as_of_version)
        ]
    return pb.GetBalanceResponse(
        balances=[balance_to_proto(b.balance) for b in found],
        as_of=pb.BalanceAsOf(
            as_of_unix_ms=at_ms if by_moment else 0,
            as_of_version=0 if by_moment else request.as_of_version,
            applied_at_unix_ms=[b.applied_at_ms for b in found],
        ),
    )


async def get_statement(
    history: JournalHistory, request: pb.GetStatementRequest
) -> pb.GetStatementResponse:
    """Raises: InvalidArgument: a malformed field, an empty range or a foreign page token."""
    fields = FieldChecks()
    user_id = fields.check(validate_user_id, request.user_id, 0)
    currency = fields.check(validate_currency, request.currency, "")
    from_ms = fields.check(_from_moment, request.from_unix_ms, 0)
    to_ms = fields.check(_to_moment, request.to_unix_ms, 0)
    if not fields.violations and to_ms <= from_ms:
        fields.violations.extend(
            InvalidArgument("to_unix_ms", "must be greater than from_unix_ms").violations
        )
    fields.raise_if_any()
    continued = None
    if request.page_token:
        continued = parse_page_token(request.page_token, user_id, currency, from_ms, to_ms)
    page = await history.statement(
        Account(user_id, currency),
        from_ms,
        to_ms,
        validate_statement_page_size(request.page_size),
        continued,
    )
    return pb.GetStatementResponse(
        opening=balance_to_proto(page.opening.balance),
        closing=balance_to_proto(page.closing.balance),
        entries=[journal_to_proto(e) for e in page.entries],
        next_page_token=page.next_page_token,
        opening_applied_at_unix_ms=page.opening.applied_at_ms,
        closing_applied_at_unix_ms=page.closing.applied_at_ms,
    )


def _as_of_moment(unix_ms: int) -> int:
    return validate_moment("as_of_unix_ms", unix_ms)


def _from_moment(unix_ms: int) -> int:
    return validate_moment("from_unix_ms", unix_ms)


def _to_moment(unix_ms: int) -> int:
    return validate_moment("to_unix_ms", unix_ms)
