"""The consumer's column path decides exactly as the general path (provenance + decide)."""

import json
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerd.consumer.columns import accounts_of, decide_columns, sort_columns
from ledgerd.consumer.decide import decide_batch
from ledgerd.consumer.provenance import sort_batch
from ledgerd.domain.amounts import MAX_SCALED, SCALE, format_amount
from ledgerd.domain.model import LEGS_PER_MESSAGE, Account, Balance, ChangeRequest, ChangeType
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import encode_change, encode_group
from ledgerd.log.signing import MessageSigner
from ledgerd.store.sql import statements
from ledgerd.store.sql.sqlite_dialect import text_literal

SIGNER = MessageSigner(b"k" * 32)
NOW_MS = 1_700_000_000_000
WINDOW_MS = 15_000
APPLIED_AT_MS = NOW_MS + 7
CLIENT_TYPES = [
    ChangeType.DEPOSIT,
    ChangeType.WITHDRAW,
    ChangeType.FREEZE,
    ChangeType.UNFREEZE,
    ChangeType.SPEND_FROZEN,
]


@dataclass(frozen=True)
class Encoding:
    user_offset: int
    amount_quote: str


MYSQL = Encoding(0, "")
SQLITE = Encoding(2**63, "'")


def record(
    request: ChangeRequest,
    offset: int,
    *,
    partition: int = 0,
    accepted_at_ms: int = NOW_MS - 100,
    resent: bool = False,
    appended_at_ms: int = 0,
) -> LogRecord:
    value = encode_change(request, accepted_at_ms=accepted_at_ms, resent=resent)
    headers = tuple(SIGNER.headers(value))
    return LogRecord("t", partition, offset, b"k", value, headers, appended_at_ms)


def random_amount(rng: random.Random) -> int:
    return rng.choice(
        [
            rng.randint(1, 10) * SCALE,
            rng.randint(1, 10**20),
            rng.randint(1, 3) * SCALE // 2,
            MAX_SCALED - rng.randint(0, 5),
        ]
    )


def random_batch(rng: random.Random) -> tuple[list[LogRecord], dict[Account, Balance], set[str]]:
    """Records of client changes over a few accounts (repeated ids, resent, old and late
    appended messages among them), the accounts' balances, and request ids decided before."""
    users = [rng.randint(1, 2**64 - 1) for _ in range(3)] + [1, 2]
    currencies = ["EUR", "BTC", "X1"]
    records: list[LogRecord] = []
    offsets = {0: rng.randint(0, 1000), 1: rng.randint(0, 1000)}
    ids: list[str] = []
    for _ in range(rng.randint(1, 60)):
        if ids and rng.random() < 0.1:
            request_id = rng.choice(ids)  # the same request again: a duplicate
        else:
            request_id = f"r-{rng.randint(0, 10**9)}.{len(ids)}"
            ids.append(request_id)
        memo = rng.choice(["", "memo", "it's \\ 'quoted'", "é" * 256])
        request = ChangeRequest(
            request_id, rng.choice(users), rng.choice(currencies), rng.choice(CLIENT_TYPES),
            random_amount(rng), memo,
        )  # fmt: skip
        partition = rng.choice([0, 1])
        old = rng.random() < 0.1
        accepted_at_ms = NOW_MS - WINDOW_MS - 1 if old else NOW_MS - 100
        # Appended: unknown (0), soon after acceptance, or past the window.
        appended_at_ms = rng.choice(
            [0, 0, accepted_at_ms + rng.randint(0, WINDOW_MS), accepted_at_ms + WINDOW_MS + 1]
        )
        records.append(
            record(
                request, offsets[partition], partition=partition, resent=rng.random() < 0.1,
                accepted_at_ms=accepted_at_ms, appended_at_ms=appended_at_ms,
            )
        )  # fmt: skip
        offsets[partition] += 1
    balances = {}
    for user in users:
        for currency in currencies:
            available = rng.choice([0, rng.randint(0, 20) * SCALE, MAX_SCALED])
            frozen = rng.choice([0, rng.randint(0, 20) * SCALE, MAX_SCALED])
            version = rng.choice([0, rng.randint(1, 100)])
            lock = rng.choice([0, 0, 0, 1, 2])  # AccountLock: some accounts locked
            balances[Account(user, currency)] = Balance(
                user, currency, available, frozen, version, lock
            )
    already_final = {rid for rid in ids if rng.random() < 0.1}
    return records, balances, already_final


@pytest.mark.parametrize("seed", range(300))
def test_column_path_decides_as_the_general_path(seed: int) -> None:
    """On random batches of client changes (some accounts locked), the column path gives
    the general path's balances, journal, rejections, outcomes, counts, checks and SQL text."""
    rng = random.Random(seed)
    records, balances, already_final = random_batch(rng)

    general = sort_batch(records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS)
    requests = [change for _, change in general.changes]
    positions = [
        (r.partition, r.offset * LEGS_PER_MESSAGE + c.atomic_leg + 1) for r, c in general.changes
    ]
    final = already_final & general.check  # the store is asked about checked ones only
    expected = decide_batch(requests, final, balances, APPLIED_AT_MS, positions)

    columns = sort_columns(records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS)
    assert columns is not None
    assert columns.check == general.check
    keyed = {(a.user_id, a.currency): b for a, b in balances.items()}
    assert set(accounts_of(columns)) <= set(keyed)
    decided = decide_columns(columns, already_final & columns.check, keyed, APPLIED_AT_MS)

    assert decided.balances == expected.balances
    assert list(decided.balances) == list(expected.balances)
    assert list(decided.journal) == expected.journal
    assert list(decided.rejections) == expected.rejections
    assert list(decided.outcomes) == expected.outcomes
    assert (decided.duplicates, decided.applied, decided.rejected) == (
        expected.duplicates, expected.applied, expected.rejected,
    )  # fmt: skip
    assert (list(decided.follow_ups), list(decided.stuck_returns)) == ([], [])
    for enc in (MYSQL, SQLITE):
        assert list(statements.insert_journal_rows(decided.rows.journal, enc, text_literal)) == (
            list(statements.insert_journal(expected.journal, enc, text_literal))
        )
        assert list(
            statements.insert_rejection_rows(decided.rows.rejections, 5, enc, text_literal)
        ) == list(statements.insert_rejections(expected.rejections, 5, enc, text_literal))
        assert [statements.journal_row_values(row, enc) for row in decided.rows.journal] == [
            statements.journal_values(entry, enc) for entry in expected.journal
        ]


@pytest.mark.parametrize("seed", range(100))
def test_accounts_stored_nowhere_are_decided_from_zeros(seed: int) -> None:
    """Left out of the balances handed in (memory and store hold nothing for them), accounts
    start at zeros: the decision is the one made with their zero balances given; the changed
    balances come with the partition of each, and by account as the general path has them."""
    rng = random.Random(seed)
    records, balances, already_final = random_batch(rng)
    for account in list(balances)[::2]:
        balances[account] = Balance(account.user_id, account.currency)
    columns = sort_columns(records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS)
    assert columns is not None
    final = already_final & columns.check
    keyed = {(a.user_id, a.currency): b for a, b in balances.items()}
    stored = {key: b for key, b in keyed.items() if b != Balance(*key)}
    given = decide_columns(columns, final, keyed, APPLIED_AT_MS)
    decided = decide_columns(columns, final, stored, APPLIED_AT_MS)
    assert decided.changed == given.changed
    assert decided.balances == given.balances
    assert list(decided.balances.values()) == decided.changed
    assert decided.rows == given.rows and decided.outcome_rows == given.outcome_rows
    # (This random log puts an account's changes in either partition; a real one never.)
    partitions: dict[tuple[int, str], set[int]] = {}
    for user, currency, partition in zip(
        columns.user_ids, columns.currencies, columns.partitions, strict=True
    ):
        partitions.setdefault((user, currency), set()).add(partition)
    assert len(decided.changed_partitions) == len(decided.changed)
    for balance, partition in zip(decided.changed, decided.changed_partitions, strict=True):
        assert partition in partitions[balance.user_id, balance.currency]


@pytest.mark.parametrize("seed", range(100))
def test_each_journal_row_carries_its_amount_as_format_amount_writes_it(seed: int) -> None:
    """Messages from the outbox have canonical amounts: the decision keeps, for each
    journal row in order, the message's text, which is format_amount of the row's amount."""
    rng = random.Random(seed)
    records, balances, already_final = random_batch(rng)
    columns = sort_columns(records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS)
    assert columns is not None
    keyed = {(a.user_id, a.currency): b for a, b in balances.items()}
    decided = decide_columns(columns, already_final & columns.check, keyed, APPLIED_AT_MS)
    assert decided.journal_amount_texts == [format_amount(row[4]) for row in decided.rows.journal]


@pytest.mark.parametrize(
    ("amount", "canonical"),
    [("1.5", True), ("0.5", True), ("10", True), ("0." + "0" * 17 + "1", True),
     ("1.50", False), ("1.0", False), ("10.000", False)],
)  # fmt: skip
def test_amount_texts_are_kept_only_when_every_one_is_canonical(
    amount: str, canonical: bool
) -> None:
    """A batch whose amounts are all written as format_amount writes them keeps their texts;
    one valid but non-canonical amount (trailing zeros) is decided all the same, but its
    batch's amounts are formatted again where text is needed."""
    batch = sort_columns(
        [signed(plain("a")), signed(plain("b", amount=amount), 1)], SIGNER, now_ms=NOW_MS,
        trust_window_ms=WINDOW_MS,
    )  # fmt: skip
    assert batch is not None
    assert batch.amount_texts == (["1.5", amount] if canonical else None)
    assert format_amount(batch.amounts[0]) == "1.5"
    decided = decide_columns(batch, set(), {}, APPLIED_AT_MS)
    assert decided.journal_amount_texts == (["1.5", amount] if canonical else None)


def plain(request_id: str = "a", **fields: object) -> bytes:
    message = {
        "request_id": request_id, "user_id": 7, "currency": "EUR", "type": 1, "amount": "1.5",
        **fields,
    }  # fmt: skip
    return json.dumps(message).encode()


def signed(value: bytes, offset: int = 0) -> LogRecord:
    return LogRecord("t", 0, offset, b"7", value, tuple(SIGNER.headers(value)))


@pytest.mark.parametrize(
    "value",
    [
        plain(amount="0"),
        plain(amount="0.000"),
        plain(amount="01"),
        plain(amount="1e5"),
        plain(amount="1." + "1" * 19),
        plain(amount="1" * 21),
        plain(request_id="a\n"),
        plain(request_id="a" * 65),
        plain(request_id=""),
        plain(request_id="t~in"),
        plain(currency="eur"),
        plain(currency="EUR\n"),
        plain(currency="EUR\nUSD"),
        plain(request_id="a\nb"),
        plain(amount="1\n2"),
        plain(amount="\u0661"),
        plain(amount="1_0"),
        plain(user_id=0),
        plain(user_id=2**64),
        plain(type=0),
        plain(type=6),
        plain(type=True),
        plain(memo="x" * 257),
        plain(memo="a\x00b"),
        plain(transfer_id="t", counterparty_user_id=8),
        plain(more_legs=[]),
        encode_group(
            [
                ChangeRequest("g", 7, "EUR", ChangeType.DEPOSIT, SCALE),
                ChangeRequest("h", 7, "EUR", ChangeType.WITHDRAW, SCALE),
            ]
        ),
        b"{not json",
    ],
)
def test_anything_but_a_valid_client_change_takes_the_general_path(value: bytes) -> None:
    """A message the column path does not take whole (invalid, a transfer leg, an atomic
    group) sends the batch to the general path, which says what it is."""
    assert sort_columns(
        [signed(plain("ok")), signed(value, 1)], SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS
    ) is None  # fmt: skip


def test_unsigned_or_badly_signed_messages_take_the_general_path() -> None:
    """Only messages signed with the outbox's key, in its one header, are taken as columns."""
    value = plain()
    other = MessageSigner(b"o" * 32)
    for headers in [
        (),
        tuple(other.headers(value)),
        tuple(SIGNER.headers(value)) * 2,
        (("ledgerd-mac", b"zz"),),
        (("other", b"x"),),
    ]:
        batch = [LogRecord("t", 0, 0, b"7", value, headers)]
        assert sort_columns(batch, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS) is None


def test_a_valid_client_change_is_taken_with_its_event_position() -> None:
    """A signed client change is taken, at offset * LEGS_PER_MESSAGE + 1 of its partition."""
    batch = sort_columns(
        [signed(plain("a", memo="m"), 5)], SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS
    )
    assert batch is not None
    assert (batch.request_ids, batch.amounts, batch.memos, batch.event_seqs) == (
        ["a"], [3 * SCALE // 2], ["m"], [5 * LEGS_PER_MESSAGE + 1],
    )  # fmt: skip


_ID_CHARS = "aZ09._:-~ \n\x00é"
_DIGITS = "0123456789.\n _+-e٣"


@settings(max_examples=200)
@given(
    request_id=st.sampled_from(["a", "a" * 64, "a.b:c-_9"]) | st.text(_ID_CHARS, max_size=66),
    user_id=st.sampled_from([0, 1, 7, 2**63, 2**64 - 1, 2**64, -1]),
    currency=st.sampled_from(["EUR", "Z" * 16, "X1"]) | st.text("AZ09az\n ", max_size=17),
    change_type=st.integers(-1, 10),  # 1-5: a client's types
    amount=st.from_regex(r"\A(0|[1-9][0-9]{0,20})(\.[0-9]{1,19})?\Z")
    | st.text(_DIGITS, max_size=40),
    memo=st.text("ab\x00\n'\\é", max_size=4) | st.sampled_from(["x" * 256, "x" * 257]),
)
def test_a_message_is_taken_as_a_column_exactly_when_the_general_path_accepts_it(
    request_id: str, user_id: int, currency: str, change_type: int, amount: str, memo: str
) -> None:
    """Any field values: the column path takes a client change iff the general path finds
    it valid (not poison), with the same values; a valid lock change (type 10) is the
    general path's alone."""
    value = plain(
        request_id, user_id=user_id, currency=currency, type=change_type, amount=amount,
        memo=memo, accepted_at_ms=NOW_MS,
    )  # fmt: skip
    records = [signed(value)]
    general = sort_batch(records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS)
    columns = sort_columns(records, SIGNER, now_ms=NOW_MS, trust_window_ms=WINDOW_MS)
    is_lock_change = change_type == ChangeType.LOCK_DEBITS
    assert (columns is not None) == (not general.poison and not is_lock_change)
    if columns is not None:
        ((_, change),) = general.changes
        assert (
            columns.request_ids, columns.user_ids, columns.currencies, columns.types,
            columns.amounts, columns.memos,
        ) == (
            [change.request_id], [change.user_id], [change.currency], [change.type],
            [change.amount], [change.memo],
        )  # fmt: skip
