"""The input of ``ledgerd batch``: changes as JSON, each in the REST API's ChangeRequest shape
(``{"request_id": "o-1", "user_id": "42", "currency": "USD", "type": "DEPOSIT", "amount": "5"}``).

Decoded by the REST gateway's decoder, so a bad item is named as the server names it
(``changes[3].amount``) and no protobuf parser text leaks out.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ledgerd.api.rest_input import parse_body
from ledgerd.errors import InvalidArgument
from ledgerd.v1 import balance_pb2 as pb


def read_items(text: str) -> list[Any]:
    """The changes of a JSON array, or of JSON lines (one object per line, blank lines skipped).

    Raises:
        InvalidArgument: the text is neither (field ``input``, naming the line).
    """
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument("input", f"not a valid JSON array: {exc}") from None
        if not isinstance(items, list):
            raise InvalidArgument("input", "must be a JSON array or JSON lines")
        return items
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidArgument("input", f"line {number}: not valid JSON: {exc.msg}") from None
    return items


def batch_request(text: str, *, wait: bool, atomic: bool) -> pb.ChangeBalancesRequest:
    """The ChangeBalancesRequest of the input; an item without a request_id gets a new UUID.

    Raises:
        InvalidArgument: the input does not decode, or the first bad item's field (by name).
    """
    items = read_items(text)
    if not items:
        raise InvalidArgument("input", "no changes given")
    with_ids = [
        {"request_id": str(uuid.uuid4()), **item} if isinstance(item, dict) else item
        for item in items
    ]
    body = json.dumps({"changes": with_ids, "wait": wait, "atomic": atomic}).encode()
    return parse_body(body, pb.ChangeBalancesRequest())
