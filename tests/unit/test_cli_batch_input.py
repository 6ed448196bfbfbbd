"""The input of `ledgerd batch`: a JSON array or JSON lines of REST ChangeRequests."""

from __future__ import annotations

import json

import pytest

from ledgerd.cli.batch_input import batch_request, read_items
from ledgerd.errors import InvalidArgument
from ledgerd.v1 import balance_pb2 as pb

SETTLE = [
    {"request_id": "s-1", "user_id": "7", "currency": "USD", "type": "SPEND_FROZEN", "amount": "5"},
    {"request_id": "s-2", "user_id": "7", "currency": "BTC", "type": "DEPOSIT", "amount": "0.1"},
]


def test_an_array_and_json_lines_read_the_same() -> None:
    """Both spellings of a list of changes give the same items; blank lines are skipped."""
    lines = "\n".join(json.dumps(item) for item in SETTLE) + "\n\n"
    assert read_items(json.dumps(SETTLE)) == read_items(lines) == SETTLE


def test_atomic_and_wait_go_into_the_request() -> None:
    """The flags become the ChangeBalancesRequest's atomic and wait; items keep their order."""
    request = batch_request(json.dumps(SETTLE), wait=True, atomic=True)
    assert request.atomic and request.wait
    assert [(c.request_id, c.type) for c in request.changes] == [
        ("s-1", pb.SPEND_FROZEN),
        ("s-2", pb.DEPOSIT),
    ]


def test_an_item_without_request_id_gets_a_fresh_one() -> None:
    """A missing request_id is a new UUID for each item, never shared."""
    items = [{k: v for k, v in item.items() if k != "request_id"} for item in SETTLE]
    ids = [c.request_id for c in batch_request(json.dumps(items), wait=False, atomic=False).changes]
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("", "input", "no changes given"),
        ("[1, 2", "input", "not a valid JSON array"),
        ('{"user_id": "1"}\n{oops', "input", "line 2: not valid JSON"),
        (json.dumps([SETTLE[0], 3]), "changes[1]", "must be a JSON object"),
        (json.dumps([{**SETTLE[0], "user_id": "x"}]), "changes[0].user_id", "must be an integer"),
        (json.dumps([{**SETTLE[0], "type": "TRANSFR"}]), "changes[0].type", "must be one of"),
    ],
)
def test_bad_input_names_the_field(text: str, field: str, problem: str) -> None:
    """Undecodable input names `input`; a bad item is named as the REST gateway names it."""
    with pytest.raises(InvalidArgument) as raised:
        batch_request(text, wait=False, atomic=False)
    assert raised.value.field == field and problem in raised.value.problem
