"""Python clients for ledgerd: synchronous and asyncio, with signing, deadlines and retries.

    with LedgerdClient("127.0.0.1:50051", key_id="app", secret="s3cret") as client:
        result = client.change("DEPOSIT", 42, "USD", "10.5", wait=True)
        print(result.status, result.balance.available)

Requests are serialized once and the exact bytes are signed and sent. A call
that fails with UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED is
retried (re-signed, same request_id), so a change is never applied twice:
the server answers a retry of an accepted change with ``duplicate = true``.
``timeout_s`` bounds each attempt; ``deadline_s``, when given, bounds the
whole call (every attempt and the backoffs between them).

A call's final failure is raised as ``LedgerdRpcError``, a ``grpc.RpcError``
with the server's error details as typed fields:

    except LedgerdRpcError as exc:
        exc.code(), exc.message, exc.reason, exc.metadata
        for field, description in exc.field_violations: ...
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from ledgerd.errors import FieldViolation
from ledgerd.rpc_errors import LedgerdRpcError
from ledgerd.signing import Signer
from ledgerd.v1 import balance_pb2 as pb

__all__ = [
    "AsyncLedgerdClient",
    "EventStream",
    "FieldViolation",
    "LedgerdClient",
    "LedgerdRpcError",
    "RetryPolicy",
    "Statement",
    "change_request",
    "transfer_request",
]

SERVICE = "/ledgerd.v1.BalanceService/"
RETRIABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_RESPONSES: dict[str, type[Message]] = {
    "GetBalance": pb.GetBalanceResponse,
    "ChangeBalance": pb.ChangeResult,
    "ChangeBalances": pb.ChangeBalancesResponse,
    "GetChange": pb.ChangeResult,
    "ListJournal": pb.ListJournalResponse,
    "HealthCheck": pb.HealthCheckResponse,
    "Transfer": pb.TransferResponse,
    "GetTransfer": pb.GetTransferResponse,
    "GetStatement": pb.GetStatementResponse,
    "LockAccount": pb.LockAccountResponse,
    "UnlockAccount": pb.UnlockAccountResponse,
    "GetHold": pb.GetHoldResponse,
}
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 16 << 20),
    ("grpc.max_receive_message_length", 16 << 20),
]


@dataclass(frozen=True, slots=True)
class Statement:
    """A whole statement: every page's entries, in version order, between its balances."""

    opening: pb.Balance
    closing: pb.Balance
    entries: Sequence[pb.JournalEntry]
    opening_applied_at_unix_ms: int
    closing_applied_at_unix_ms: int

    @classmethod
    def of(cls, pages: Sequence[pb.GetStatementResponse]) -> Statement:
        first = pages[0]
        return cls(
            first.opening,
            first.closing,
            [entry for page in pages for entry in page.entries],
            first.opening_applied_at_unix_ms,
            first.closing_applied_at_unix_ms,
        )


def _as_of_request(
    user_id: int, currency: str, as_of_unix_ms: int | None, as_of_version: int | None
) -> pb.GetBalanceRequest:
    request = pb.GetBalanceRequest(user_id=user_id, currency=currency)
    if as_of_unix_ms is not None:
        request.as_of_unix_ms = as_of_unix_ms
    if as_of_version is not None:
        request.as_of_version = as_of_version
    return request


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    first_backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def backoff_s(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * float(2**attempt))


@dataclass(frozen=True, slots=True)
class CallDeadline:
    """When a whole call must be over, on the ``time.monotonic()`` clock (None: never)."""

    at: float | None

    @classmethod
    def after(cls, deadline_s: float | None, now: float) -> CallDeadline:
        return cls(None if deadline_s is None else now + deadline_s)

    def attempt_timeout_s(self, timeout_s: float, now: float) -> float:
        """An attempt's own timeout, cut to what is left of the call's deadline."""
        if self.at is None:
            return timeout_s
        return max(0.0, min(timeout_s, self.at - now))

    def allows_retry(self, backoff_s: float, now: float) -> bool:
        """Whether an attempt after ``backoff_s`` would still start before the deadline."""
        return self.at is None or now + backoff_s < self.at


def change_request(
    change_type: str | int,
    user_id: int,
    currency: str,
    amount: str,
    *,
    request_id: str | None = None,
    wait: bool = False,
    memo: str = "",
) -> pb.ChangeBalanceRequest:
    """A ChangeBalanceRequest with a fresh request_id unless one is given."""
    # The wire enum accepts its names; numbers are turned into names first.
    kind = change_type.upper() if isinstance(change_type, str) else pb.ChangeType.Name(change_type)
    return pb.ChangeBalanceRequest(
        request_id=request_id or str(uuid.uuid4()),
        user_id=user_id,
        currency=currency,
        type=kind,
        amount=amount,
        wait=wait,
        memo=memo,
    )


def transfer_request(
    from_user_id: int,
    to_user_id: int,
    currency: str,
    amount: str,
    *,
    request_id: str | None = None,
    from_frozen: bool = False,
    wait: bool = False,
    memo: str = "",
) -> pb.TransferRequest:
    """A TransferRequest with a fresh request_id unless one is given."""
    return pb.TransferRequest(
        request_id=request_id or str(uuid.uuid4()),
        from_user_id=from_user_id,
        to_user_id=to_user_id,
        currency=currency,
        amount=amount,
        from_frozen=from_frozen,
        wait=wait,
        memo=memo,
    )


def lock_request(
    user_id: int,
    currency: str,
    lock: str | int,
    *,
    request_id: str | None = None,
    wait: bool = False,
    memo: str = "",
) -> pb.LockAccountRequest:
    """A LockAccountRequest (``lock``: "debits", "full" or an AccountLock value) with a fresh
    request_id unless one is given."""
    scope = f"ACCOUNT_LOCK_{lock.upper()}" if isinstance(lock, str) else pb.AccountLock.Name(lock)
    return pb.LockAccountRequest(
        request_id=request_id or str(uuid.uuid4()),
        user_id=user_id,
        currency=currency,
        lock=scope,
        memo=memo,
        wait=wait,
    )


def unlock_request(
    user_id: int,
    currency: str,
    *,
    request_id: str | None = None,
    wait: bool = False,
    memo: str = "",
) -> pb.UnlockAccountRequest:
    return pb.UnlockAccountRequest(
        request_id=request_id or str(uuid.uuid4()),
        user_id=user_id,
        currency=currency,
        memo=memo,
        wait=wait,
    )


def hold_request(
    user_id: int,
    currency: str,
    amount: str,
    *,
    timeout_ms: int = 0,
    expires_at_unix_ms: int = 0,
    request_id: str | None = None,
    wait: bool = False,
    memo: str = "",
) -> pb.ChangeBalanceRequest:
    """A HOLD (exactly one of ``timeout_ms`` and ``expires_at_unix_ms``); its request id is
    the hold's id."""
    request = change_request(
        "HOLD", user_id, currency, amount, request_id=request_id, wait=wait, memo=memo
    )
    request.timeout_ms = timeout_ms
    request.expires_at_unix_ms = expires_at_unix_ms
    return request


def capture_request(
    user_id: int,
    currency: str,
    hold_id: str,
    amount: str,
    *,
    to_user_id: int = 0,
    request_id: str | None = None,
    wait: bool = False,
    memo: str = "",
) -> pb.ChangeBalanceRequest:
    """A HOLD_CAPTURE of ``amount`` from the hold; ``to_user_id`` credits that user."""
    request = change_request(
        "HOLD_CAPTURE", user_id, currency, amount, request_id=request_id, wait=wait, memo=memo
    )
    request.hold_id = hold_id
    request.to_user_id = to_user_id
    return request


def release_request(
    user_id: int,
    currency: str,
    hold_id: str,
    *,
    request_id: str | None = None,
    wait: bool = False,
    memo: str = "",
) -> pb.ChangeBalanceRequest:
    """A HOLD_RELEASE: what remains of the hold back to available."""
    request = change_request(
        "HOLD_RELEASE", user_id, currency, "", request_id=request_id, wait=wait, memo=memo
    )
    request.hold_id = hold_id
    return request


def _channel_credentials(tls_root_cert: bytes | None, tls: bool) -> grpc.ChannelCredentials | None:
    if tls_root_cert is not None or tls:
        return grpc.ssl_channel_credentials(root_certificates=tls_root_cert)
    return None


class _Base:
    """What both clients share: the channel, signing, and the retry decisions."""

    # grpc or grpc.aio: both offer secure_channel/insecure_channel with one signature.
    _grpc: Any = grpc

    def __init__(
        self,
        target: str,
        *,
        key_id: str | None = None,
        secret: str | None = None,
        tls: bool = False,
        tls_root_cert: bytes | None = None,
        timeout_s: float = 10.0,
        deadline_s: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if (key_id is None) != (secret is None):
            raise ValueError("key_id and secret go together")
        self._signer = Signer(key_id, secret) if key_id and secret else None
        self._timeout_s = timeout_s
        self._deadline_s = deadline_s
        self._retry = retry or RetryPolicy()
        credentials = _channel_credentials(tls_root_cert, tls)
        self._channel = (
            self._grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
            if credentials is not None
            else self._grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        )

    def _prepare(self, name: str, request: Message, timeout_s: float | None) -> _Prepared:
        """The stub, the bytes to send (serialized once: they are what is signed), the deadline."""
        method = SERVICE + name
        stub = self._channel.unary_unary(
            method, request_serializer=None, response_deserializer=_RESPONSES[name].FromString
        )
        return _Prepared(
            stub,
            method,
            request.SerializeToString(),
            timeout_s or self._timeout_s,
            CallDeadline.after(self._deadline_s, time.monotonic()),
        )

    def _metadata(self, prepared: _Prepared) -> tuple[tuple[str, str | bytes], ...] | None:
        """Signed anew for every attempt: each needs a fresh nonce and timestamp."""
        if self._signer is None:
            return None
        return tuple(self._signer.headers(prepared.method, prepared.body))

    def _backoff_s(self, error: grpc.RpcError, attempt: int, prepared: _Prepared) -> float:
        """How long to wait before the next attempt.

        Raises:
            LedgerdRpcError: ``error`` with its details when final (not retriable, the last
                attempt, or no time left for another before the call's deadline).
        """
        backoff_s = self._retry.backoff_s(attempt)
        if (
            error.code() not in RETRIABLE
            or attempt == self._retry.attempts - 1
            or not prepared.deadline.allows_retry(backoff_s, time.monotonic())
        ):
            raise LedgerdRpcError(error) from error
        return backoff_s


@dataclass(frozen=True, slots=True)
class _Prepared:
    stub: Any
    method: str
    body: bytes
    timeout_s: float
    deadline: CallDeadline

    def attempt_timeout_s(self) -> float:
        return self.deadline.attempt_timeout_s(self.timeout_s, time.monotonic())


class LedgerdClient(_Base):
    """Blocking client; thread-safe (one channel shared by all calls)."""

    def __enter__(self) -> LedgerdClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def call(self, name: str, request: Message, timeout_s: float | None = None) -> Any:
        """Call one RPC by name with signing and retries.

        Raises:
            LedgerdRpcError: the final failure (non-retriable, or out of attempts).
        """
        prepared = self._prepare(name, request, timeout_s)
        for attempt in range(self._retry.attempts):
            try:
                return prepared.stub(
                    prepared.body,
                    timeout=prepared.attempt_timeout_s(),
                    metadata=self._metadata(prepared),
                )
            except grpc.RpcError as exc:
                time.sleep(self._backoff_s(exc, attempt, prepared))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_balance(self, user_id: int, currency: str = "") -> Sequence[pb.Balance]:
        request = pb.GetBalanceRequest(user_id=user_id, currency=currency)
        return list(self.call("GetBalance", request).balances)

    def change(
        self,
        change_type: str | int,
        user_id: int,
        currency: str,
        amount: str,
        *,
        request_id: str | None = None,
        wait: bool = False,
        memo: str = "",
    ) -> pb.ChangeResult:
        request = change_request(
            change_type, user_id, currency, amount, request_id=request_id, wait=wait, memo=memo
        )
        result: pb.ChangeResult = self.call("ChangeBalance", request)
        return result

    def change_many(
        self,
        changes: Sequence[pb.ChangeBalanceRequest],
        *,
        wait: bool = False,
        atomic: bool = False,
    ) -> Sequence[pb.ChangeResult]:
        """ChangeBalances; ``atomic``: one user's changes, applied all or none."""
        request = pb.ChangeBalancesRequest(changes=changes, wait=wait, atomic=atomic)
        return list(self.call("ChangeBalances", request).results)

    def transfer(
        self,
        from_user_id: int,
        to_user_id: int,
        currency: str,
        amount: str,
        *,
        request_id: str | None = None,
        from_frozen: bool = False,
        wait: bool = False,
        memo: str = "",
    ) -> pb.Transfer:
        """Move ``amount`` from one user to another; the transfer's state (PENDING without
        ``wait``), retried with the same request_id like a change."""
        request = transfer_request(
            from_user_id, to_user_id, currency, amount,
            request_id=request_id, from_frozen=from_frozen, wait=wait, memo=memo,
        )  # fmt: skip
        answer: pb.TransferResponse = self.call("Transfer", request)
        return answer.transfer

    def get_transfer(self, request_id: str) -> pb.Transfer:
        answer: pb.GetTransferResponse = self.call(
            "GetTransfer", pb.GetTransferRequest(request_id=request_id)
        )
        return answer.transfer

    def get_change(self, request_id: str) -> pb.ChangeResult:
        result: pb.ChangeResult = self.call("GetChange", pb.GetChangeRequest(request_id=request_id))
        return result

    def hold(self, user_id: int, currency: str, amount: str, **options: Any) -> pb.ChangeResult:
        """HOLD (``hold_request``'s options: ``timeout_ms`` or ``expires_at_unix_ms``, ...);
        the answer's request_id is the hold's id."""
        result: pb.ChangeResult = self.call(
            "ChangeBalance", hold_request(user_id, currency, amount, **options)
        )
        return result

    def capture_hold(
        self, user_id: int, currency: str, hold_id: str, amount: str, **options: Any
    ) -> pb.ChangeResult:
        """HOLD_CAPTURE (``capture_request``'s options: ``to_user_id``, ...)."""
        result: pb.ChangeResult = self.call(
            "ChangeBalance", capture_request(user_id, currency, hold_id, amount, **options)
        )
        return result

    def release_hold(
        self, user_id: int, currency: str, hold_id: str, **options: Any
    ) -> pb.ChangeResult:
        """HOLD_RELEASE: what remains of the hold back to available."""
        result: pb.ChangeResult = self.call(
            "ChangeBalance", release_request(user_id, currency, hold_id, **options)
        )
        return result

    def get_hold(self, user_id: int, hold_id: str) -> pb.Hold:
        """The hold as last applied (NOT_FOUND until its HOLD applied)."""
        answer: pb.GetHoldResponse = self.call(
            "GetHold", pb.GetHoldRequest(user_id=user_id, hold_id=hold_id)
        )
        return answer.hold

    def lock_account(
        self,
        user_id: int,
        currency: str,
        lock: str | int,
        *,
        request_id: str | None = None,
        wait: bool = False,
        memo: str = "",
    ) -> pb.ChangeResult:
        """LockAccount (``lock``: "debits" or "full"); needs an ``admin`` key when signing."""
        request = lock_request(user_id, currency, lock, request_id=request_id, wait=wait, memo=memo)
        answer: pb.LockAccountResponse = self.call("LockAccount", request)
        return answer.result

    def unlock_account(
        self,
        user_id: int,
        currency: str,
        *,
        request_id: str | None = None,
        wait: bool = False,
        memo: str = "",
    ) -> pb.ChangeResult:
        request = unlock_request(user_id, currency, request_id=request_id, wait=wait, memo=memo)
        answer: pb.UnlockAccountResponse = self.call("UnlockAccount", request)
        return answer.result

    def journal(
        self, user_id: int, currency: str, after_version: int = 0, limit: int = 100
    ) -> Sequence[pb.JournalEntry]:
        request = pb.ListJournalRequest(
            user_id=user_id, currency=currency, after_version=after_version, limit=limit
        )
        return list(self.call("ListJournal", request).entries)

    def health(self) -> pb.HealthCheckResponse:
        result: pb.HealthCheckResponse = self.call("HealthCheck", pb.HealthCheckRequest())
        return result

    def balance_as_of(
        self,
        user_id: int,
        currency: str = "",
        *,
        as_of_unix_ms: int | None = None,
        as_of_version: int | None = None,
    ) -> pb.GetBalanceResponse:
        """GetBalance from the journal, as of a moment (inclusive) or a version; the answer's
        ``as_of`` says when each balance's entry was applied."""
        request = _as_of_request(user_id, currency, as_of_unix_ms, as_of_version)
        answer: pb.GetBalanceResponse = self.call("GetBalance", request)
        return answer

    def statement_page(
        self,
        user_id: int,
        currency: str,
        from_unix_ms: int,
        to_unix_ms: int,
        *,
        page_size: int = 0,
        page_token: str = "",
    ) -> pb.GetStatementResponse:
        """One page of GetStatement over [from_unix_ms, to_unix_ms)."""
        request = pb.GetStatementRequest(
            user_id=user_id, currency=currency, from_unix_ms=from_unix_ms,
            to_unix_ms=to_unix_ms, page_size=page_size, page_token=page_token,
        )  # fmt: skip
        answer: pb.GetStatementResponse = self.call("GetStatement", request)
        return answer

    def statement(
        self, user_id: int, currency: str, from_unix_ms: int, to_unix_ms: int, page_size: int = 0
    ) -> Statement:
        """The whole statement over [from_unix_ms, to_unix_ms), every page read."""
        pages = [
            self.statement_page(user_id, currency, from_unix_ms, to_unix_ms, page_size=page_size)
        ]
        while pages[-1].next_page_token:
            pages.append(
                self.statement_page(
                    user_id,
                    currency,
                    from_unix_ms,
                    to_unix_ms,
                    page_size=page_size,
                    page_token=pages[-1].next_page_token,
                )
            )
        return Statement.of(pages)

    def tail_events(
        self, *, from_beginning: bool = False, limit: int = 0, timeout_s: float | None = None
    ) -> EventStream:
        """The change events (docs/events.md), as they are published: from the oldest kept, or
        from those published after this returns (the server has positioned its reader by
        then). Not retried; ``timeout_s`` bounds the whole stream (None: no bound).

        Raises:
            LedgerdRpcError: the call failed before its first event (also raised by the
                stream's iteration for a failure later).
        """
        method = SERVICE + "TailEvents"
        body = pb.TailEventsRequest(from_beginning=from_beginning, limit=limit).SerializeToString()
        stub = self._channel.unary_stream(
            method,
            request_serializer=None,
            response_deserializer=pb.TailEventsResponse.FromString,
        )
        metadata = None if self._signer is None else tuple(self._signer.headers(method, body))
        stream = EventStream(stub(body, timeout=timeout_s, metadata=metadata))
        stream.wait_positioned()
        return stream


class EventStream:
    """The events of one TailEvents call, as they come; ``cancel`` (or leaving a ``with``
    block) ends it, and iteration then stops quietly."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.cancel()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> pb.BalanceEvent:
        """Raises: LedgerdRpcError: the stream failed (not when cancelled here)."""
        try:
            response: pb.TailEventsResponse = next(self._call)
        except grpc.RpcError as exc:
            if self._cancelled and exc.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise LedgerdRpcError(exc) from exc
        return response.event

    def wait_positioned(self) -> None:
        """Block until the server sent its headers (its reader is positioned) or failed."""
        self._call.initial_metadata()

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()


class AsyncLedgerdClient(_Base):
    """asyncio client (grpc.aio); the same calls as LedgerdClient, awaited."""

    _grpc = grpc.aio

    async def __aenter__(self) -> AsyncLedgerdClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)

    async def call(self, name: str, request: Message, timeout_s: float | None = None) -> Any:
        """Raises: LedgerdRpcError: the final failure."""
        prepared = self._prepare(name, request, timeout_s)
        for attempt in range(self._retry.attempts):
            try:
                return await prepared.stub(
                    prepared.body,
                    timeout=prepared.attempt_timeout_s(),
                    metadata=self._metadata(prepared),
                )
            except grpc.RpcError as exc:
                await asyncio.sleep(self._backoff_s(exc, attempt, prepared))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def get_balance(self, user_id: int, currency: str = "") -> Sequence[pb.Balance]:
        answer = await self.call(
            "GetBalance", pb.GetBalanceRequest(user_id=user_id, currency=currency)
        )
        return list(answer.balances)

    async def change(
        self,
        change_type: str | int,
        user_id: int,
        currency: str,
        amount: str,
        *,
        request_id: str | None = None,
        wait: bool = False,
        memo: str = "",
    ) -> pb.ChangeResult:
        request = change_request(
            change_type, user_id, currency, amount, request_id=request_id, wait=wait, memo=memo
        )
        result: pb.ChangeResult = await self.call("ChangeBalance", request)
        return result

    async def change_many(
        self,
        changes: Sequence[pb.ChangeBalanceRequest],
        *,
        wait: bool = False,
        atomic: bool = False,
    ) -> Sequence[pb.ChangeResult]:
        """ChangeBalances; ``atomic``: one user's changes, applied all or none."""
        answer = await self.call(
            "ChangeBalances", pb.ChangeBalancesRequest(changes=changes, wait=wait, atomic=atomic)
        )
        return list(answer.results)

    async def transfer(
        self,
        from_user_id: int,
        to_user_id: int,
        currency: str,
        amount: str,
        *,
        request_id: str | None = None,
        from_frozen: bool = False,
        wait: bool = False,
        memo: str = "",
    ) -> pb.Transfer:
        request = transfer_request(
            from_user_id, to_user_id, currency, amount,
            request_id=request_id, from_frozen=from_frozen, wait=wait, memo=memo,
        )  # fmt: skip
        answer: pb.TransferResponse = await self.call("Transfer", request)
        return answer.transfer

    async def hold(
        self, user_id: int, currency: str, amount: str, **options: Any
    ) -> pb.ChangeResult:
        """HOLD (``hold_request``'s options: ``timeout_ms`` or ``expires_at_unix_ms``, ...);
        the answer's request_id is the hold's id."""
        result: pb.ChangeResult = await self.call(
            "ChangeBalance", hold_request(user_id, currency, amount, **options)
        )
        return result

    async def capture_hold(
        self, user_id: int, currency: str, hold_id: str, amount: str, **options: Any
    ) -> pb.ChangeResult:
        """HOLD_CAPTURE (``capture_request``'s options: ``to_user_id``, ...)."""
        result: pb.ChangeResult = await self.call(
            "ChangeBalance", capture_request(user_id, currency, hold_id, amount, **options)
        )
        return result

    async def release_hold(
        self, user_id: int, currency: str, hold_id: str, **options: Any
    ) -> pb.ChangeResult:
        """HOLD_RELEASE: what remains of the hold back to available."""
        result: pb.ChangeResult = await self.call(
            "ChangeBalance", release_request(user_id, currency, hold_id, **options)
        )
        return result

    async def get_hold(self, user_id: int, hold_id: str) -> pb.Hold:
        answer: pb.GetHoldResponse = await self.call(
            "GetHold", pb.GetHoldRequest(user_id=user_id, hold_id=hold_id)
        )
        return answer.hold

    async def get_transfer(self, request_id: str) -> pb.Transfer:
        answer: pb.GetTransferResponse = await self.call(
            "GetTransfer", pb.GetTransferRequest(request_id=request_id)
        )
        return answer.transfer

    async def get_change(self, request_id: str) -> pb.ChangeResult:
        result: pb.ChangeResult = await self.call(
            "GetChange", pb.GetChangeRequest(request_id=request_id)
        )
        return result

    async def lock_account(
        self,
        user_id: int,
        currency: str,
        lock: str | int,
        *,
        request_id: str | None = None,
        wait: bool = False,
        memo: str = "",
    ) -> pb.ChangeResult:
        request = lock_request(user_id, currency, lock, request_id=request_id, wait=wait, memo=memo)
        answer: pb.LockAccountResponse = await self.call("LockAccount", request)
        return answer.result

    async def unlock_account(
        self,
        user_id: int,
        currency: str,
        *,
        request_id: str | None = None,
        wait: bool = False,
        memo: str = "",
    ) -> pb.ChangeResult:
        request = unlock_request(user_id, currency, request_id=request_id, wait=wait, memo=memo)
        answer: pb.UnlockAccountResponse = await self.call("UnlockAccount", request)
        return answer.result

    async def journal(
        self, user_id: int, currency: str, after_version: int = 0, limit: int = 100
    ) -> Sequence[pb.JournalEntry]:
        request = pb.ListJournalRequest(
            user_id=user_id, currency=currency, after_version=after_version, limit=limit
        )
        return list((await self.call("ListJournal", request)).entries)

    async def health(self) -> pb.HealthCheckResponse:
        result: pb.HealthCheckResponse = await self.call("HealthCheck", pb.HealthCheckRequest())
        return result

    async def balance_as_of(
        self,
        user_id: int,
        currency: str = "",
        *,
        as_of_unix_ms: int | None = None,
        as_of_version: int | None = None,
    ) -> pb.GetBalanceResponse:
        """As ``LedgerdClient.balance_as_of``."""
        request = _as_of_request(user_id, currency, as_of_unix_ms, as_of_version)
        answer: pb.GetBalanceResponse = await self.call("GetBalance", request)
        return answer

    async def statement_page(
        self,
        user_id: int,
        currency: str,
        from_unix_ms: int,
        to_unix_ms: int,
        *,
        page_size: int = 0,
        page_token: str = "",
    ) -> pb.GetStatementResponse:
        request = pb.GetStatementRequest(
            user_id=user_id, currency=currency, from_unix_ms=from_unix_ms,
            to_unix_ms=to_unix_ms, page_size=page_size, page_token=page_token,
        )  # fmt: skip
        answer: pb.GetStatementResponse = await self.call("GetStatement", request)
        return answer

    async def statement(
        self, user_id: int, currency: str, from_unix_ms: int, to_unix_ms: int, page_size: int = 0
    ) -> Statement:
        """The whole statement over [from_unix_ms, to_unix_ms), every page read."""
        pages = [
            await self.statement_page(
                user_id, currency, from_unix_ms, to_unix_ms, page_size=page_size
            )
        ]
        while pages[-1].next_page_token:
            pages.append(
                await self.statement_page(
                    user_id,
                    currency,
                    from_unix_ms,
                    to_unix_ms,
                    page_size=page_size,
                    page_token=pages[-1].next_page_token,
                )
            )
        return Statement.of(pages)

    async def tail_events(
        self, *, from_beginning: bool = False, limit: int = 0, timeout_s: float | None = None
    ) -> AsyncIterator[pb.BalanceEvent]:
        """The change events, as LedgerdClient.tail_events; ends the call when the caller
        stops iterating.

        Raises:
            LedgerdRpcError: the call failed.
        """
        method = SERVICE + "TailEvents"
        body = pb.TailEventsRequest(from_beginning=from_beginning, limit=limit).SerializeToString()
        stub = self._channel.unary_stream(
            method,
            request_serializer=None,
            response_deserializer=pb.TailEventsResponse.FromString,
        )
        metadata = None if self._signer is None else tuple(self._signer.headers(method, body))
        call = stub(body, timeout=timeout_s, metadata=metadata)
        try:
            async for response in call:
                yield response.event
        except grpc.RpcError as exc:
            raise LedgerdRpcError(exc) from exc
        finally:
            call.cancel()
