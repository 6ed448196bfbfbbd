from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_TYPE_UNSPECIFIED: _ClassVar[ChangeType]
    DEPOSIT: _ClassVar[ChangeType]
    WITHDRAW: _ClassVar[ChangeType]
    FREEZE: _ClassVar[ChangeType]
    UNFREEZE: _ClassVar[ChangeType]
    SPEND_FROZEN: _ClassVar[ChangeType]
    TRANSFER_OUT: _ClassVar[ChangeType]
    TRANSFER_OUT_FROZEN: _ClassVar[ChangeType]
    TRANSFER_IN: _ClassVar[ChangeType]
    TRANSFER_RETURN: _ClassVar[ChangeType]
    LOCK_DEBITS: _ClassVar[ChangeType]
    LOCK_FULL: _ClassVar[ChangeType]
    UNLOCK: _ClassVar[ChangeType]
    HOLD: _ClassVar[ChangeType]
    HOLD_CAPTURE: _ClassVar[ChangeType]
    HOLD_RELEASE: _ClassVar[ChangeType]
    HOLD_EXPIRE: _ClassVar[ChangeType]

class ChangeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_STATUS_UNSPECIFIED: _ClassVar[ChangeStatus]
    PENDING: _ClassVar[ChangeStatus]
    SENT: _ClassVar[ChangeStatus]
    APPLIED: _ClassVar[ChangeStatus]
    REJECTED: _ClassVar[ChangeStatus]
    FAILED: _ClassVar[ChangeStatus]

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    INSUFFICIENT_AVAILABLE: _ClassVar[RejectReason]
    INSUFFICIENT_FROZEN: _ClassVar[RejectReason]
    AMOUNT_OVERFLOW: _ClassVar[RejectReason]
    ACCOUNT_LOCKED: _ClassVar[RejectReason]
    HOLD_NOT_FOUND: _ClassVar[RejectReason]
    HOLD_RELEASED: _ClassVar[RejectReason]
    HOLD_EXPIRED: _ClassVar[RejectReason]
    HOLD_OVER_CAPTURE: _ClassVar[RejectReason]
    HOLD_CAPTURED: _ClassVar[RejectReason]

class AccountLock(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_LOCK_NONE: _ClassVar[AccountLock]
    ACCOUNT_LOCK_DEBITS: _ClassVar[AccountLock]
    ACCOUNT_LOCK_FULL: _ClassVar[AccountLock]

class HoldState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATE_UNSPECIFIED: _ClassVar[HoldState]
    HOLD_STATE_OPEN: _ClassVar[HoldState]
    HOLD_STATE_CAPTURED: _ClassVar[HoldState]
    HOLD_STATE_RELEASED: _ClassVar[HoldState]
    HOLD_STATE_EXPIRED: _ClassVar[HoldState]
CHANGE_TYPE_UNSPECIFIED: ChangeType
DEPOSIT: ChangeType
WITHDRAW: ChangeType
FREEZE: ChangeType
UNFREEZE: ChangeType
SPEND_FROZEN: ChangeType
TRANSFER_OUT: ChangeType
TRANSFER_OUT_FROZEN: ChangeType
TRANSFER_IN: ChangeType
TRANSFER_RETURN: ChangeType
LOCK_DEBITS: ChangeType
LOCK_FULL: ChangeType
UNLOCK: ChangeType
HOLD: ChangeType
HOLD_CAPTURE: ChangeType
HOLD_RELEASE: ChangeType
HOLD_EXPIRE: ChangeType
CHANGE_STATUS_UNSPECIFIED: ChangeStatus
PENDING: ChangeStatus
SENT: ChangeStatus
APPLIED: ChangeStatus
REJECTED: ChangeStatus
FAILED: ChangeStatus
REJECT_REASON_UNSPECIFIED: RejectReason
INSUFFICIENT_AVAILABLE: RejectReason
INSUFFICIENT_FROZEN: RejectReason
AMOUNT_OVERFLOW: RejectReason
ACCOUNT_LOCKED: RejectReason
HOLD_NOT_FOUND: RejectReason
HOLD_RELEASED: RejectReason
HOLD_EXPIRED: RejectReason
HOLD_OVER_CAPTURE: RejectReason
HOLD_CAPTURED: RejectReason
ACCOUNT_LOCK_NONE: AccountLock
ACCOUNT_LOCK_DEBITS: AccountLock
ACCOUNT_LOCK_FULL: AccountLock
HOLD_STATE_UNSPECIFIED: HoldState
HOLD_STATE_OPEN: HoldState
HOLD_STATE_CAPTURED: HoldState
HOLD_STATE_RELEASED: HoldState
HOLD_STATE_EXPIRED: HoldState

class Balance(_message.Message):
    __slots__ = ("user_id", "currency", "available", "frozen", "version", "lock")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    currency: str
    available: str
    frozen: str
    version: int
    lock: AccountLock
    def __init__(self, user_id: _Optional[int] = ..., currency: _Optional[str] = ..., available: _Optional[str] = ..., frozen: _Optional[str] = ..., version: _Optional[int] = ..., lock: _Optional[_Union[AccountLock, str]] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("user_id", "currency", "as_of_unix_ms", "as_of_version")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    currency: str
    as_of_unix_ms: int
    as_of_version: int
    def __init__(self, user_id: _Optional[int] = ..., currency: _Optional[str] = ..., as_of_unix_ms: _Optional[int] = ..., as_of_version: _Optional[int] = ...) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("balances", "as_of")
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    balances: _containers.RepeatedCompositeFieldContainer[Balance]
    as_of: BalanceAsOf
    def __init__(self, balances: _Optional[_Iterable[_Union[Balance, _Mapping]]] = ..., as_of: _Optional[_Union[BalanceAsOf, _Mapping]] = ...) -> None: ...

class ChangeBalanceRequest(_message.Message):
    __slots__ = ("request_id", "user_id", "currency", "type", "amount", "wait", "memo", "hold_id", "expires_at_unix_ms", "timeout_ms", "to_user_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: int
    currency: str
    type: ChangeType
    amount: str
    wait: bool
    memo: str
    hold_id: str
    expires_at_unix_ms: int
    timeout_ms: int
    to_user_id: int
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[int] = ..., currency: _Optional[str] = ..., type: _Optional[_Union[ChangeType, str]] = ..., amount: _Optional[str] = ..., wait: _Optional[bool] = ..., memo: _Optional[str] = ..., hold_id: _Optional[str] = ..., expires_at_unix_ms: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., to_user_id: _Optional[int] = ...) -> None: ...

class ChangeResult(_message.Message):
    __slots__ = ("request_id", "status", "reject_reason", "balance", "duplicate")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: ChangeStatus
    reject_reason: RejectReason
    balance: Balance
    duplicate: bool
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[ChangeStatus, str]] = ..., reject_reason: _Optional[_Union[RejectReason, str]] = ..., balance: _Optional[_Union[Balance, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ChangeBalancesRequest(_message.Message):
    __slots__ = ("changes", "wait", "atomic")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    ATOMIC_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ChangeBalanceRequest]
    wait: bool
    atomic: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[ChangeBalanceRequest, _Mapping]]] = ..., wait: _Optional[bool] = ..., atomic: _Optional[bool] = ...) -> None: ...

class ChangeBalancesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ChangeResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ChangeResult, _Mapping]]] = ...) -> None: ...

class GetChangeRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class ListJournalRequest(_message.Message):
    __slots__ = ("user_id", "currency", "after_version", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    currency: str
    after_version: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., currency: _Optional[str] = ..., after_version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class JournalEntry(_message.Message):
    __slots__ = ("request_id", "user_id", "currency", "type", "amount", "available_after", "frozen_after", "version", "applied_at_unix_ms", "memo", "transfer_id", "counterparty_user_id", "actor", "lock_after", "hold_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    FROZEN_AFTER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    LOCK_AFTER_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: int
    currency: str
    type: ChangeType
    amount: str
    available_after: str
    frozen_after: str
    version: int
    applied_at_unix_ms: int
    memo: str
    transfer_id: str
    counterparty_user_id: int
    actor: str
    lock_after: AccountLock
    hold_id: str
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[int] = ..., currency: _Optional[str] = ..., type: _Optional[_Union[ChangeType, str]] = ..., amount: _Optional[str] = ..., available_after: _Optional[str] = ..., frozen_after: _Optional[str] = ..., version: _Optional[int] = ..., applied_at_unix_ms: _Optional[int] = ..., memo: _Optional[str] = ..., transfer_id: _Optional[str] = ..., counterparty_user_id: _Optional[int] = ..., actor: _Optional[str] = ..., lock_after: _Optional[_Union[AccountLock, str]] = ..., hold_id: _Optional[str] = ...) -> None: ...

class ListJournalResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[JournalEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[JournalEntry, _Mapping]]] = ...) -> None: ...

class HealthCheckRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ("status", "components")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[HealthCheckResponse.Status]
        SERVING: _ClassVar[HealthCheckResponse.Status]
        NOT_SERVING: _ClassVar[HealthCheckResponse.Status]
    UNKNOWN: HealthCheckResponse.Status
    SERVING: HealthCheckResponse.Status
    NOT_SERVING: HealthCheckResponse.Status
    class ComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    status: HealthCheckResponse.Status
    components: _containers.ScalarMap[str, str]
    def __init__(self, status: _Optional[_Union[HealthCheckResponse.Status, str]] = ..., components: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("request_id", "from_user_id", "to_user_id", "currency", "amount", "from_frozen", "memo", "wait")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_FROZEN_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    from_user_id: int
    to_user_id: int
    currency: str
    amount: str
    from_frozen: bool
    memo: str
    wait: bool
    def __init__(self, request_id: _Optional[str] = ..., from_user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., from_frozen: _Optional[bool] = ..., memo: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("request_id", "status", "reject_reason", "duplicate", "debited", "from_balance", "to_balance", "from_user_id", "to_user_id", "currency", "amount", "from_frozen", "memo")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    DEBITED_FIELD_NUMBER: _ClassVar[int]
    FROM_BALANCE_FIELD_NUMBER: _ClassVar[int]
    TO_BALANCE_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_FROZEN_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: ChangeStatus
    reject_reason: RejectReason
    duplicate: bool
    debited: bool
    from_balance: Balance
    to_balance: Balance
    from_user_id: int
    to_user_id: int
    currency: str
    amount: str
    from_frozen: bool
    memo: str
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[ChangeStatus, str]] = ..., reject_reason: _Optional[_Union[RejectReason, str]] = ..., duplicate: _Optional[bool] = ..., debited: _Optional[bool] = ..., from_balance: _Optional[_Union[Balance, _Mapping]] = ..., to_balance: _Optional[_Union[Balance, _Mapping]] = ..., from_user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., from_frozen: _Optional[bool] = ..., memo: _Optional[str] = ...) -> None: ...

class TransferResponse(_message.Message):
    __slots__ = ("transfer",)
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    transfer: Transfer
    def __init__(self, transfer: _Optional[_Union[Transfer, _Mapping]] = ...) -> None: ...

class GetTransferRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class GetTransferResponse(_message.Message):
    __slots__ = ("transfer",)
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    transfer: Transfer
    def __init__(self, transfer: _Optional[_Union[Transfer, _Mapping]] = ...) -> None: ...

class BalanceEvent(_message.Message):
    __slots__ = ("entry", "partition", "sequence")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    entry: JournalEntry
    partition: int
    sequence: int
    def __init__(self, entry: _Optional[_Union[JournalEntry, _Mapping]] = ..., partition: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class TailEventsRequest(_message.Message):
    __slots__ = ("from_beginning", "limit")
    FROM_BEGINNING_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_beginning: bool
    limit: int
    def __init__(self, from_beginning: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class TailEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: BalanceEvent
    def __init__(self, event: _Optional[_Union[BalanceEvent, _Mapping]] = ...) -> None: ...

class BalanceAsOf(_message.Message):
    __slots__ = ("as_of_unix_ms", "as_of_version", "applied_at_unix_ms")
    AS_OF_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    as_of_unix_ms: int
    as_of_version: int
    applied_at_unix_ms: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, as_of_unix_ms: _Optional[int] = ..., as_of_version: _Optional[int] = ..., applied_at_unix_ms: _Optional[_Iterable[int]] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("user_id", "currency", "from_unix_ms", "to_unix_ms", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FROM_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TO_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    currency: str
    from_unix_ms: int
    to_unix_ms: int
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[int] = ..., currency: _Optional[str] = ..., from_unix_ms: _Optional[int] = ..., to_unix_ms: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetStatementResponse(_message.Message):
    __slots__ = ("opening", "closing", "entries", "next_page_token", "opening_applied_at_unix_ms", "closing_applied_at_unix_ms")
    OPENING_FIELD_NUMBER: _ClassVar[int]
    CLOSING_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OPENING_APPLIED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CLOSING_APPLIED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    opening: Balance
    closing: Balance
    entries: _containers.RepeatedCompositeFieldContainer[JournalEntry]
    next_page_token: str
    opening_applied_at_unix_ms: int
    closing_applied_at_unix_ms: int
    def __init__(self, opening: _Optional[_Union[Balance, _Mapping]] = ..., closing: _Optional[_Union[Balance, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[JournalEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., opening_applied_at_unix_ms: _Optional[int] = ..., closing_applied_at_unix_ms: _Optional[int] = ...) -> None: ...

class LockAccountRequest(_message.Message):
    __slots__ = ("request_id", "user_id", "currency", "lock", "memo", "wait")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: int
    currency: str
    lock: AccountLock
    memo: str
    wait: bool
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[int] = ..., currency: _Optional[str] = ..., lock: _Optional[_Union[AccountLock, str]] = ..., memo: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class LockAccountResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ChangeResult
    def __init__(self, result: _Optional[_Union[ChangeResult, _Mapping]] = ...) -> None: ...

class UnlockAccountRequest(_message.Message):
    __slots__ = ("request_id", "user_id", "currency", "memo", "wait")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: int
    currency: str
    memo: str
    wait: bool
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[int] = ..., currency: _Optional[str] = ..., memo: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class UnlockAccountResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ChangeResult
    def __init__(self, result: _Optional[_Union[ChangeResult, _Mapping]] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("hold_id", "user_id", "currency", "amount", "captured", "remaining", "state", "expires_at_unix_ms")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    user_id: int
    currency: str
    amount: str
    captured: str
    remaining: str
    state: HoldState
    expires_at_unix_ms: int
    def __init__(self, hold_id: _Optional[str] = ..., user_id: _Optional[int] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., captured: _Optional[str] = ..., remaining: _Optional[str] = ..., state: _Optional[_Union[HoldState, str]] = ..., expires_at_unix_ms: _Optional[int] = ...) -> None: ...

class GetHoldRequest(_message.Message):
    __slots__ = ("user_id", "hold_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    hold_id: str
    def __init__(self, user_id: _Optional[int] = ..., hold_id: _Optional[str] = ...) -> None: ...

class GetHoldResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...
