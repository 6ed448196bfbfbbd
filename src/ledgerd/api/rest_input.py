"""Decoding REST requests into proto messages: content type, JSON bodies, path and query
integers. Every problem is an InvalidArgument naming the field as the REST API spells it
(snake_case, ``changes[3].amount``), never protobuf's parser text."""

from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any, TypeVar, cast

from aiohttp import hdrs, web
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ledgerd.errors import InvalidArgument

M = TypeVar("M", bound=Message)

JSON_MEDIA_TYPE = "application/json"
UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1

_INTEGER_LIMITS = {
    FieldDescriptor.TYPE_UINT64: UINT64_MAX,
    FieldDescriptor.TYPE_UINT32: UINT32_MAX,
}


def require_json(request: web.Request) -> None:
    """A request with a body must declare it ``application/json`` (UTF-8, the only JSON
    encoding RFC 8259 allows).

    Raises:
        web.HTTPUnsupportedMediaType: any other content type, or none.
    """
    if not request.body_exists:
        return
    declared = request.headers.get(hdrs.CONTENT_TYPE)
    if declared is None:
        problem = "missing"
    elif request.content_type != JSON_MEDIA_TYPE:
        problem = f"{declared!r} is not supported"
    elif (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        problem = f"charset {request.charset!r} is not supported"
    else:
        return
    raise web.HTTPUnsupportedMediaType(
        text=f"Content-Type: {problem}; send {JSON_MEDIA_TYPE} (charset utf-8, if any)"
    )


def parse_body(body: bytes, message: M) -> M:
    """Fill ``message`` from a JSON body in proto3's JSON mapping (field names in snake_case
    or lowerCamelCase); unknown fields are rejected, as a misspelt field of a money movement
    must not be silently dropped.

    Raises:
        InvalidArgument: undecodable JSON (field ``body``), or the first bad field, by name.
    """
    descriptor = cast(Descriptor, message.DESCRIPTOR)  # the stubs type it as a union
    document = _decode(body)
    if not isinstance(document, _JsonObject):
        raise InvalidArgument("body", f"must be a JSON object ({descriptor.name})")
    _check_object(document, descriptor, "")
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError:
        # Rare, so only now each value is tried on its own, to name the field.
        _check_values(document, descriptor, "")
        raise InvalidArgument("body", f"not a valid {descriptor.name}") from None
    return message


def _decode(body: bytes) -> Any:
    """Raises: InvalidArgument: the body is not UTF-8 JSON (field ``body``)."""
    try:
        # Decoded here, as json.loads would also guess UTF-16 and UTF-32 from bytes.
        return json.loads(body.decode("utf-8") or "{}", object_pairs_hook=_JsonObject.of)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except UnicodeDecodeError:
        problem = "not valid UTF-8"
    except (ValueError, RecursionError):  # a number of over 4300 digits, nesting too deep
        problem = "not valid JSON: a number too long or nesting too deep"
    raise InvalidArgument("body", problem)


def path_integer(request: web.Request, name: str, maximum: int = UINT64_MAX) -> int:
    """Raises: InvalidArgument: the path segment is not an integer in [0, maximum]."""
    return _integer(name, request.match_info.get(name, ""), maximum)


def query_integer(request: web.Request, name: str, maximum: int = UINT64_MAX) -> int:
    """An optional query parameter (absent or empty: 0).

    Raises:
        InvalidArgument: the parameter is not an integer in [0, maximum].
    """
    return _integer(name, request.query.get(name) or "0", maximum)


def _integer(name: str, raw: str, maximum: int) -> int:
    # isdecimal() alone accepts other scripts' digits; the length check keeps int() cheap.
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > len(str(maximum)):
        raise InvalidArgument(name, f"must be an integer from 0 to {maximum}")
    value = int(raw)
    if value > maximum:
        raise InvalidArgument(name, f"must be an integer from 0 to {maximum}")
    return value


class _JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers the keys it was given more than once (json.loads
    keeps only the last value, which for a money field would hide a conflicting one)."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def of(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        obj = cls(pairs)
        if len(obj) < len(pairs):
            obj.duplicates = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        return obj


@functools.cache
def _fields_by_json_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """Both spellings proto3's JSON mapping accepts: ``user_id`` and ``userId``."""
    return {f.json_name: f for f in descriptor.fields} | dict(descriptor.fields_by_name)


def _check_object(document: _JsonObject, descriptor: Descriptor, prefix: str) -> None:
    """The shape: known fields, each once, objects and arrays where messages are.

    Raises:
        InvalidArgument: the first unknown or repeated field, or a message that is not an
            object (array of objects, if repeated).
    """
    seen: set[str] = set()
    fields = _fields_by_json_key(descriptor)
    for key, value in document.items():
        field = fields.get(key)
        if field is None:
            raise InvalidArgument(prefix + key, f"unknown field of {descriptor.name}")
        if key in document.duplicates or field.name in seen:
            raise InvalidArgument(prefix + field.name, "given more than once")
        seen.add(field.name)
        if value is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
            _check_message_field(field, value, prefix)


def _check_message_field(field: FieldDescriptor, value: Any, prefix: str) -> None:
    name = prefix + field.name
    if not field.is_repeated:
        if not isinstance(value, _JsonObject):
            raise InvalidArgument(name, "must be a JSON object")
        _check_object(value, _message_type(field), name + ".")
        return
    if not isinstance(value, list):
        raise InvalidArgument(name, "must be a JSON array of objects")
    for index, item in enumerate(value):
        if not isinstance(item, _JsonObject):
            raise InvalidArgument(f"{name}[{index}]", "must be a JSON object")
        _check_object(item, _message_type(field), f"{name}[{index}].")


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None  # a TYPE_MESSAGE field always has one
    return field.message_type


def _check_values(document: _JsonObject, descriptor: Descriptor, prefix: str) -> None:
    """Each value of a document whose shape ``_check_object`` accepted, on its own:
    protobuf's parser decides what the JSON mapping accepts; only the message is ours.

    Raises:
        InvalidArgument: the first value of the wrong type, named.
    """
    probe_type = message_factory.GetMessageClass(descriptor)
    fields = _fields_by_json_key(descriptor)
    for key, value in document.items():
        field = fields.get(key)
        if field is None or value is None:
            continue
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            try:
                json_format.ParseDict({key: value}, probe_type())
            except json_format.ParseError:
                raise InvalidArgument(prefix + field.name, _expected(field)) from None
        elif field.is_repeated:
            for index, item in enumerate(value):
                _check_values(item, _message_type(field), f"{prefix}{field.name}[{index}].")
        else:
            _check_values(value, _message_type(field), f"{prefix}{field.name}.")


def _expected(field: FieldDescriptor) -> str:
    kind = field.type
    if kind in _INTEGER_LIMITS:
        return (
            f"must be an integer from 0 to {_INTEGER_LIMITS[kind]}"
            " (a JSON string of digits, or a number)"
        )
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        names = [v.name for v in field.enum_type.values if v.number != 0]
        return "must be one of " + ", ".join(names)
    if kind == FieldDescriptor.TYPE_BOOL:
        return "must be true or false"
    if kind == FieldDescriptor.TYPE_STRING:
        return "must be a JSON string"
    return "has the wrong JSON type"


def query_boolean(request: web.Request, name: str) -> bool:
    """An optional query parameter: true or 1, false or 0 (absent or empty: false).

    Raises:
        InvalidArgument: any other value.
    """
    raw = (request.query.get(name) or "false").lower()
    if raw not in ("true", "1", "false", "0"):
        raise InvalidArgument(name, "must be true or false")
    return raw in ("true", "1")
