"""The operations of ledgerd.v1.BalanceService on proto messages, shared by the gRPC
servicer and the REST gateway. Each raises LedgerError subclasses; the transports map
them to their status codes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from ledgerd.api import history_handlers
from ledgerd.api.convert import (
    answer_to_proto,
    balance_to_proto,
    change_from_proto,
    hold_to_proto,
    journal_to_proto,
    lock_from_proto,
    transfer_from_proto,
    transfer_to_proto,
    unlock_from_proto,
)
from ledgerd.domain.model import ChangeRequest
from ledgerd.domain.validation import (
    MAX_BATCH_CHANGES,
    FieldChecks,
    validate_atomic,
    validate_currency,
    validate_journal_limit,
    validate_request_id,
    validate_user_id,
)
from ledgerd.errors import FieldViolation, InvalidArgument, LogUnavailable
from ledgerd.events.tail import EventTail, OnOpen
from ledgerd.runtime.probes import HealthSource
from ledgerd.service import LedgerService
from ledgerd.v1 import balance_pb2 as pb


class Handlers:
    def __init__(
        self, service: LedgerService, health: HealthSource, events: EventTail | None = None
    ) -> None:
        self._service = service
        self._health = health
        self._events = events

    async def get_balance(self, request: pb.GetBalanceRequest) -> pb.GetBalanceResponse:
        if history_handlers.is_as_of(request):
            return await history_handlers.get_balance_as_of(self._service.history, request)
        fields = FieldChecks()
        user_id = fields.check(validate_user_id, request.user_id, 0)
        currency = (
            fields.check(validate_currency, request.currency, "") if request.currency else None
        )
        fields.raise_if_any()
        balances = await self._service.get_balances(user_id, currency)
        return pb.GetBalanceResponse(balances=[balance_to_proto(b) for b in balances])

    async def change_balance(
        self, request: pb.ChangeBalanceRequest, deadline: float | None
    ) -> pb.ChangeResult:
        change = change_from_proto(request)
        (answer,) = await self._service.change([change], wait=request.wait, deadline=deadline)
        return answer_to_proto(answer)

    async def change_balances(
        self, request: pb.ChangeBalancesRequest, deadline: float | None
    ) -> pb.ChangeBalancesResponse:
        if len(request.changes) > MAX_BATCH_CHANGES:
            raise InvalidArgument("changes", f"at most {MAX_BATCH_CHANGES} changes per call")
        changes: list[ChangeRequest] = []
        violations: list[FieldViolation] = []
        for index, item in enumerate(request.changes):
            try:
                changes.append(change_from_proto(item))
            except InvalidArgument as exc:  # keep going: the answer names every bad item
                violations.extend(exc.at_index("changes", index).violations)
        if violations:
            raise InvalidArgument.of(violations)
        if not changes:
            return pb.ChangeBalancesResponse()
        if request.atomic:
            validate_atomic(changes)
            holds = [
                FieldViolation(f"changes[{index}].type", "a hold change is never atomic")
                for index, change in enumerate(changes)
                if change.hold_id
            ]
            if holds:
                raise InvalidArgument.of(holds)
            if len(changes) > 1:
                # One group, named by its first leg, published as one message.
                group = changes[0].request_id
                changes = [
                    dataclasses.replace(change, atomic_group=group, atomic_leg=index)
                    for index, change in enumerate(changes)
                ]
        answers = await self._service.change(changes, wait=request.wait, deadline=deadline)
        return pb.ChangeBalancesResponse(results=[answer_to_proto(a) for a in answers])

    async def transfer(
        self, request: pb.TransferRequest, deadline: float | None
    ) -> pb.TransferResponse:
        debit = transfer_from_proto(request)
        answer = await self._service.transfer(debit, wait=request.wait, deadline=deadline)
        return pb.TransferResponse(transfer=transfer_to_proto(answer))

    async def get_transfer(self, request: pb.GetTransferRequest) -> pb.GetTransferResponse:
        answer = await self._service.get_transfer(validate_request_id(request.request_id))
        return pb.GetTransferResponse(transfer=transfer_to_proto(answer))

    async def get_hold(self, request: pb.GetHoldRequest) -> pb.GetHoldResponse:
        fields = FieldChecks()
        user_id = fields.check(validate_user_id, request.user_id, 0)
        hold_id = fields.check(_hold_id, request.hold_id, "")
        fields.raise_if_any()
        hold = await self._service.get_hold(user_id, hold_id)
        return pb.GetHoldResponse(hold=hold_to_proto(hold))

    async def get_change(self, request: pb.GetChangeRequest) -> pb.ChangeResult:
        answer = await self._service.get_change(validate_request_id(request.request_id))
        return answer_to_proto(answer)

    async def list_journal(self, request: pb.ListJournalRequest) -> pb.ListJournalResponse:
        fields = FieldChecks()
        user_id = fields.check(validate_user_id, request.user_id, 0)
        currency = fields.check(validate_currency, request.currency, "")
        limit = fields.check(validate_journal_limit, request.limit, 0)
        fields.raise_if_any()
        entries = await self._service.list_journal(user_id, currency, request.after_version, limit)
        return pb.ListJournalResponse(entries=[journal_to_proto(e) for e in entries])

    async def get_statement(self, request: pb.GetStatementRequest) -> pb.GetStatementResponse:
        return await history_handlers.get_statement(self._service.history, request)

    async def health_check(self, _: pb.HealthCheckRequest) -> pb.HealthCheckResponse:
        health = await self._health()
        status = (
            pb.HealthCheckResponse.SERVING if health.serving else pb.HealthCheckResponse.NOT_SERVING
        )
        return pb.HealthCheckResponse(status=status, components=dict(health.components))

    async def lock_account(
        self, request: pb.LockAccountRequest, deadline: float | None, actor: str = ""
    ) -> pb.LockAccountResponse:
        """A lock change through the outbox, like any change; ``actor`` is the signing key id."""
        change = lock_from_proto(request, actor)
        (answer,) = await self._service.change([change], wait=request.wait, deadline=deadline)
        return pb.LockAccountResponse(result=answer_to_proto(answer))

    async def unlock_account(
        self, request: pb.UnlockAccountRequest, deadline: float | None, actor: str = ""
    ) -> pb.UnlockAccountResponse:
        change = unlock_from_proto(request, actor)
        (answer,) = await self._service.change([change], wait=request.wait, deadline=deadline)
        return pb.UnlockAccountResponse(result=answer_to_proto(answer))

    def end_streams(self) -> None:
        """End the open TailEvents calls (a stopping server does not wait for them)."""
        if self._events is not None:
            self._events.stop()

    async def tail_events(
        self, request: pb.TailEventsRequest, on_open: OnOpen | None = None
    ) -> AsyncIterator[pb.TailEventsResponse]:
        """The events of ``balance-events`` (docs/events.md); ``on_open`` runs once the reader
        is positioned, so a caller can tell its client that later changes will be seen.

        Raises:
            LogUnavailable: the log did not answer, or events are off in this deployment.
        """
        if self._events is None:
            raise LogUnavailable("change events are off here (LEDGERD_EVENTS=false)")
        events = self._events.events(
            from_beginning=request.from_beginning, limit=request.limit, on_open=on_open
        )
        async for event in events:
            yield pb.TailEventsResponse(event=event)


def _hold_id(value: str) -> str:
    try:
        return validate_request_id(value)
    except InvalidArgument:
        raise InvalidArgument("hold_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -") from None
