"""ledgerd.v1.BalanceService over grpc.aio: the shared handlers and their error codes.

Calls are counted and logged around this, by the gatekeeper (``ledgerd.api.calls``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog

from ledgerd.api.errors import abort, status_of
from ledgerd.api.handlers import Handlers
from ledgerd.errors import LedgerError
from ledgerd.signing import KEY_ID_HEADER
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

log = structlog.get_logger(__name__)

T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]


class BalanceServicer(pb_grpc.BalanceServiceServicer):
    """Maps each RPC onto the handlers; every LedgerError becomes its status and details."""

    def __init__(self, handlers: Handlers, *, signed: bool = False) -> None:
        self._handlers = handlers
        self._signed = signed  # calls are verified: a call's key id names who made it

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        return await _serve("GetBalance", context, lambda: self._handlers.get_balance(request))

    async def ChangeBalance(
        self, request: pb.ChangeBalanceRequest, context: Context
    ) -> pb.ChangeResult:
        deadline = _deadline(context)
        return await _serve(
            "ChangeBalance", context, lambda: self._handlers.change_balance(request, deadline)
        )

    async def ChangeBalances(
        self, request: pb.ChangeBalancesRequest, context: Context
    ) -> pb.ChangeBalancesResponse:
        deadline = _deadline(context)
        return await _serve(
            "ChangeBalances", context, lambda: self._handlers.change_balances(request, deadline)
        )

    async def Transfer(self, request: pb.TransferRequest, context: Context) -> pb.TransferResponse:
        deadline = _deadline(context)
        return await _serve("Transfer", context, lambda: self._handlers.transfer(request, deadline))

    async def GetTransfer(
        self, request: pb.GetTransferRequest, context: Context
    ) -> pb.GetTransferResponse:
        return await _serve("GetTransfer", context, lambda: self._handlers.get_transfer(request))

    async def GetHold(self, request: pb.GetHoldRequest, context: Context) -> pb.GetHoldResponse:
        return await _serve("GetHold", context, lambda: self._handlers.get_hold(request))

    async def GetChange(self, request: pb.GetChangeRequest, context: Context) -> pb.ChangeResult:
        return await _serve("GetChange", context, lambda: self._handlers.get_change(request))

    async def ListJournal(
        self, request: pb.ListJournalRequest, context: Context
    ) -> pb.ListJournalResponse:
        return await _serve("ListJournal", context, lambda: self._handlers.list_journal(request))

    async def GetStatement(
        self, request: pb.GetStatementRequest, context: Context
    ) -> pb.GetStatementResponse:
        return await _serve("GetStatement", context, lambda: self._handlers.get_statement(request))

    async def HealthCheck(
        self, request: pb.HealthCheckRequest, context: Context
    ) -> pb.HealthCheckResponse:
        return await _serve("HealthCheck", context, lambda: self._handlers.health_check(request))

    async def LockAccount(
        self, request: pb.LockAccountRequest, context: Context
    ) -> pb.LockAccountResponse:
        deadline, actor = _deadline(context), self._actor(context)
        return await _serve(
            "LockAccount", context, lambda: self._handlers.lock_account(request, deadline, actor)
        )

    async def UnlockAccount(
        self, request: pb.UnlockAccountRequest, context: Context
    ) -> pb.UnlockAccountResponse:
        deadline, actor = _deadline(context), self._actor(context)
        return await _serve(
            "UnlockAccount",
            context,
            lambda: self._handlers.unlock_account(request, deadline, actor),
        )

    def _actor(self, context: Context) -> str:
        """The key that signed the call (the gatekeeper verified it); empty with signing off,
        where a key id header proves nothing."""
        if not self._signed:
            return ""
        for key, value in context.invocation_metadata() or ():
            if key == KEY_ID_HEADER:
                return value if isinstance(value, str) else value.decode(errors="replace")
        return ""

    async def TailEvents(
        self, request: pb.TailEventsRequest, context: Context
    ) -> AsyncIterator[pb.TailEventsResponse]:
        async def opened() -> None:
            # Headers go out once the reader is positioned: a client that waits for them
            # knows every later change reaches it.
            await context.send_initial_metadata(())

        try:
            async for response in self._handlers.tail_events(request, opened):
                yield response
        except LedgerError as exc:
            if status_of(exc) is grpc.StatusCode.INTERNAL:
                log.error("internal error", method="TailEvents", error=str(exc))
            await abort(context, exc)


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


async def _serve(method: str, context: Context, handle: Callable[[], Awaitable[T]]) -> T:
    """Run a handler, answer LedgerErrors with their status code and details."""
    try:
        return await handle()
    except LedgerError as exc:
        status = status_of(exc)
        if status is grpc.StatusCode.INTERNAL:
            log.error("internal error", method=method, error=str(exc))
        await abort(context, exc)
    except Exception:
        log.exception("unhandled error", method=method)
        raise
