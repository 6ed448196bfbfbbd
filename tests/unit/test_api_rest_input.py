"""REST request decoding names the bad field as the REST API spells it."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ledgerd.api.rest_input import parse_body, path_integer, query_integer, require_json
from ledgerd.errors import InvalidArgument
from ledgerd.v1 import balance_pb2 as pb

GOOD = {
    "request_id": "r-1",
    "user_id": "18446744073709551615",
    "currency": "USD",
    "type": "DEPOSIT",
    "amount": "1.5",
}


def field_of_error(body: bytes, message: Any = None) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_body(body, message or pb.ChangeBalanceRequest())
    return caught.value.field, caught.value.problem


def test_a_valid_body_parses_with_a_20_digit_user_id() -> None:
    """2**64-1 (20 digits) is a valid user_id; snake_case and camelCase names both parse."""
    message = parse_body(json.dumps(GOOD).encode(), pb.ChangeBalanceRequest())
    assert message.user_id == 2**64 - 1 and message.type == pb.DEPOSIT
    camel = parse_body(b'{"requestId": "r", "userId": 7}', pb.ChangeBalanceRequest())
    assert (camel.request_id, camel.user_id) == ("r", 7)


def test_undecodable_json_names_the_body_with_the_position() -> None:
    """Broken JSON is reported on ``body`` with line and column, not protobuf's text."""
    field, problem = field_of_error(b'{"user_id": 1,}')
    assert field == "body" and "line 1, column 15" in problem


@pytest.mark.parametrize("body", [b"\xff\xfe{}", '{"memo": "é"}'.encode("utf-16")])
def test_a_body_that_is_not_utf8_is_rejected(body: bytes) -> None:
    """Only UTF-8 is JSON on the wire (RFC 8259); UTF-16 is not guessed."""
    assert field_of_error(body) == ("body", "not valid UTF-8")


def test_a_body_that_is_not_an_object_is_rejected() -> None:
    """A JSON array or scalar is not a request message."""
    assert field_of_error(b"[1]")[0] == "body"


@pytest.mark.parametrize(
    ("extra", "field", "problem_start"),
    [
        ({"user_id": "x"}, "user_id", "must be an integer from 0 to 18446744073709551615"),
        ({"userId": "18446744073709551616"}, "user_id", "must be an integer"),
        ({"user_id": 1.5}, "user_id", "must be an integer"),
        ({"type": "GIFT"}, "type", "must be one of DEPOSIT, WITHDRAW, FREEZE, UNFREEZE"),
        ({"wait": "yes"}, "wait", "must be true or false"),
        ({"amount": 5}, "amount", "must be a JSON string"),
    ],
)
def test_an_ill_typed_field_is_named_in_snake_case(
    extra: dict[str, Any], field: str, problem_start: str
) -> None:
    """The field comes back snake_case even when the client wrote it in camelCase."""
    body = {**GOOD, **extra}
    if "userId" in extra:
        del body["user_id"]  # else the field is given twice
    named, problem = field_of_error(json.dumps(body).encode())
    assert named == field and problem.startswith(problem_start)
    assert "Failed to parse" not in problem


def test_an_unknown_field_is_rejected_by_its_name() -> None:
    """A misspelt field of a money movement is refused, not dropped."""
    assert field_of_error(json.dumps({**GOOD, "ammount": "2"}).encode()) == (
        "ammount",
        "unknown field of ChangeBalanceRequest",
    )


def test_a_field_given_twice_is_rejected() -> None:
    """A repeated key (or both spellings of one field) is refused instead of last-wins."""
    assert field_of_error(b'{"amount": "1", "amount": "9"}') == ("amount", "given more than once")
    assert field_of_error(b'{"user_id": 1, "userId": 2}')[0] == "user_id"


def test_null_is_the_default_value() -> None:
    """proto3's JSON mapping: null leaves the field at its default."""
    assert parse_body(b'{"memo": null}', pb.ChangeBalanceRequest()).memo == ""


def test_a_bad_field_in_a_batch_is_named_with_its_index() -> None:
    """Inside ``changes``, the item's index is part of the name."""
    body = json.dumps({"changes": [GOOD, {**GOOD, "currency": 840}]}).encode()
    assert field_of_error(body, pb.ChangeBalancesRequest())[0] == "changes[1].currency"
    body = json.dumps({"changes": [GOOD, {**GOOD, "extra": 1}]}).encode()
    assert field_of_error(body, pb.ChangeBalancesRequest())[0] == "changes[1].extra"
    body = json.dumps({"changes": [GOOD, "x"]}).encode()
    assert field_of_error(body, pb.ChangeBalancesRequest())[0] == "changes[1]"
    assert field_of_error(b'{"changes": {}}', pb.ChangeBalancesRequest())[0] == "changes"


def mocked(path: str, **match_info: str) -> web.Request:
    return make_mocked_request("GET", path, match_info=match_info)


@pytest.mark.parametrize(
    "raw", ["18446744073709551616", "99999999999999999999999", "-1", "1e3", "x", "١٢"]
)
def test_a_bad_path_integer_names_its_parameter(raw: str) -> None:
    """Oversized, negative or non-numeric: the error names user_id, not ``number``."""
    with pytest.raises(InvalidArgument) as caught:
        path_integer(mocked(f"/v1/balances/{raw}", user_id=raw), "user_id")
    assert caught.value.field == "user_id"


def test_a_path_integer_of_20_digits_is_accepted() -> None:
    """2**64-1 is in range."""
    raw = str(2**64 - 1)
    assert path_integer(mocked(f"/v1/balances/{raw}", user_id=raw), "user_id") == 2**64 - 1


def test_query_integers_name_their_parameter_and_default_to_zero() -> None:
    """after_version and limit: absent is 0, out of range names the parameter."""
    assert query_integer(mocked("/v1/journal/1/USD"), "after_version") == 0
    with pytest.raises(InvalidArgument) as caught:
        query_integer(mocked("/v1/journal/1/USD?limit=4294967296"), "limit", maximum=2**32 - 1)
    assert caught.value.field == "limit"
    with pytest.raises(InvalidArgument) as caught:
        query_integer(mocked("/v1/journal/1/USD?after_version=abc"), "after_version")
    assert caught.value.field == "after_version"


def with_body(content_type: str | None) -> web.Request:
    headers = {"Content-Length": "2"} | ({"Content-Type": content_type} if content_type else {})
    # Any payload other than aiohttp's empty one counts as a body.
    return make_mocked_request("POST", "/v1/changes", headers=headers, payload=mock.Mock())


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=UTF-8"])
def test_json_content_types_are_accepted(content_type: str) -> None:
    """application/json, with or without charset utf-8."""
    require_json(with_body(content_type))


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                     "application/json; charset=latin-1"],
)  # fmt: skip
def test_other_content_types_are_refused_naming_the_header(content_type: str | None) -> None:
    """Anything but JSON in UTF-8 is 415, and the message names Content-Type."""
    with pytest.raises(web.HTTPUnsupportedMediaType) as caught:
        require_json(with_body(content_type))
    assert (caught.value.text or "").startswith("Content-Type: ")


def test_a_request_without_a_body_needs_no_content_type() -> None:
    """GET requests carry no body, so no Content-Type."""
    require_json(make_mocked_request("GET", "/v1/health"))
