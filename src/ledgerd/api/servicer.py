"""ledgerd.v1.BalanceService over grpc.aio: validation, mapping, error codes, metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog

from ledgerd import metrics
from ledgerd.api.convert import (
    answer_to_proto,
    balance_to_proto,
    change_from_proto,
    journal_to_proto,
)
from ledgerd.api.errors import status_of
from ledgerd.domain.model import ChangeRequest
from ledgerd.domain.validation import (
    MAX_BATCH_CHANGES,
    validate_currency,
    validate_journal_limit,
    validate_request_id,
    validate_user_id,
)
from ledgerd.errors import InvalidArgument, LedgerError
from ledgerd.service import LedgerService
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

log = structlog.get_logger(__name__)

T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]


class BalanceServicer(pb_grpc.BalanceServiceServicer):
    """Maps each RPC onto the service layer; every LedgerError becomes its status code."""

    def __init__(self, service: LedgerService) -> None:
        self._service = service

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        async def handle() -> pb.GetBalanceResponse:
            user_id = validate_user_id(request.user_id)
            currency = validate_currency(request.currency) if request.currency else None
            balances = await self._service.get_balances(user_id, currency)
            return pb.GetBalanceResponse(balances=[balance_to_proto(b) for b in balances])

        return await _serve("GetBalance", context, handle)

    async def ChangeBalance(
        self, request: pb.ChangeBalanceRequest, context: Context
    ) -> pb.ChangeResult:
        async def handle() -> pb.ChangeResult:
            change = change_from_proto(request)
            (answer,) = await self._service.change(
                [change], wait=request.wait, deadline=_deadline(context)
            )
            return answer_to_proto(answer)

        return await _serve("ChangeBalance", context, handle)

    async def ChangeBalances(
        self, request: pb.ChangeBalancesRequest, context: Context
    ) -> pb.ChangeBalancesResponse:
        async def handle() -> pb.ChangeBalancesResponse:
            if len(request.changes) > MAX_BATCH_CHANGES:
                raise InvalidArgument("changes", f"at most {MAX_BATCH_CHANGES} changes per call")
            changes: list[ChangeRequest] = []
            for index, item in enumerate(request.changes):
                try:
                    changes.append(change_from_proto(item))
                except InvalidArgument as exc:
                    raise exc.at_index("changes", index) from None
            if not changes:
                return pb.ChangeBalancesResponse()
            answers = await self._service.change(
                changes, wait=request.wait, deadline=_deadline(context)
            )
            return pb.ChangeBalancesResponse(results=[answer_to_proto(a) for a in answers])

        return await _serve("ChangeBalances", context, handle)

    async def GetChange(self, request: pb.GetChangeRequest, context: Context) -> pb.ChangeResult:
        async def handle() -> pb.ChangeResult:
            answer = await self._service.get_change(validate_request_id(request.request_id))
            return answer_to_proto(answer)

        return await _serve("GetChange", context, handle)

    async def ListJournal(
        self, request: pb.ListJournalRequest, context: Context
    ) -> pb.ListJournalResponse:
        async def handle() -> pb.ListJournalResponse:
            entries = await self._service.list_journal(
                validate_user_id(request.user_id),
                validate_currency(request.currency),
                request.after_version,
                validate_journal_limit(request.limit),
            )
            return pb.ListJournalResponse(entries=[journal_to_proto(e) for e in entries])

        return await _serve("ListJournal", context, handle)

    async def HealthCheck(
        self, request: pb.HealthCheckRequest, context: Context
    ) -> pb.HealthCheckResponse:
        async def handle() -> pb.HealthCheckResponse:
            health = await self._service.health()
            status = (
                pb.HealthCheckResponse.SERVING
                if health.serving
                else pb.HealthCheckResponse.NOT_SERVING
            )
            return pb.HealthCheckResponse(status=status, components=dict(health.components))

        return await _serve("HealthCheck", context, handle)


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


async def _serve(method: str, context: Context, handle: Callable[[], Awaitable[T]]) -> T:
    """Run a handler, answer LedgerErrors with their status code, record metrics."""
    started = time.perf_counter()
    code = "OK"
    try:
        return await handle()
    except LedgerError as exc:
        status = status_of(exc)
        code = status.name
        if status is grpc.StatusCode.INTERNAL:
            log.error("internal error", method=method, error=str(exc))
        await context.abort(status, str(exc))
        raise  # abort() raises; this line only satisfies the type checker
    except Exception:
        code = "UNKNOWN"
        log.exception("unhandled error", method=method)
        raise
    finally:
        metrics.RPC_REQUESTS.labels(method=method, code=code).inc()
        metrics.RPC_LATENCY.labels(method=method).observe(time.perf_counter() - started)
