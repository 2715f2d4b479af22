"""Proto3 JSON in and out, with protobuf's own `json_format`.

Requests accept lowerCamel and original field names; unknown fields and bad values are
the caller's mistake (HttpError 400 naming the field), whatever the body holds. Replies
print every field, defaults included (grpc-gateway's default), as compact one-line JSON:
int64 as strings, enums by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from csf.gateway.catalogue import Found
from csf.gateway.errors import HttpError, compact

MAX_LINES = 10_000  # messages in one client-streaming body


def _invalid(message: str) -> HttpError:
    return HttpError(400, "INVALID_ARGUMENT", message[:1024])


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not JSON (proto3 JSON writes it as a string)")


# NaN, Infinity and 1e400 are no JSON numbers: in a Value they could not be printed back.
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_not_a_number)


def _json(text: bytes, where: str) -> Any:
    try:
        return _DECODER.decode(text.decode())
    except (ValueError, RecursionError) as exc:
        raise _invalid(f"{where}: invalid JSON ({exc})") from None


def _message(message_class: Any, value: Any, where: str) -> Message:
    message: Message = message_class()
    name = message.DESCRIPTOR.full_name
    if not isinstance(value, dict) and not name.startswith("google.protobuf."):
        raise _invalid(f"{where}: expected a JSON object for {name}")
    try:
        json_format.ParseDict(value, message)
    except (json_format.ParseError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise _invalid(f"{where}: {exc}") from None
    return message


def from_body(message_class: Any, body: bytes) -> Message:
    """One request message from a JSON body (empty: all defaults)."""
    return _message(message_class, _json(body, "body") if body.strip() else {}, "body")


def from_lines(message_class: Any, body: bytes) -> list[Message]:
    """The messages of an NDJSON body, one per non-blank line."""
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) > MAX_LINES:
        raise _invalid(f"body: more than {MAX_LINES} messages")
    return [
        _message(message_class, _json(line, f"line {n}"), f"line {n}")
        for n, line in enumerate(lines, 1)
    ]


def from_http(found: Found, query: Iterable[tuple[str, str]], body: bytes) -> Message:
    """The request of an annotated route: its body as the rule says, query parameters
    (unless the body is the whole message), then the path's variables."""
    rule = found.rule
    assert rule is not None
    descriptor = found.method.input.DESCRIPTOR
    value: dict[str, Any] = {}
    if rule.body == "*":
        parsed = _json(body, "body") if body.strip() else {}
        if not isinstance(parsed, dict):
            raise _invalid("body: expected a JSON object")
        value = parsed
    else:
        if rule.body and body.strip():
            _place(value, descriptor, rule.body, _json(body, "body"), raw=True)
        for name, text in query:
            _place(value, descriptor, name, text)
    for name, text in found.bound.items():
        _place(value, descriptor, name, text)
    return _message(found.method.input, value, "request")


def _place(
    value: dict[str, Any], descriptor: Descriptor, path: str, text: Any, raw: bool = False
) -> None:
    """Set the field at dotted `path` in the JSON `value` (a repeated field collects)."""
    names = path.split(".")
    target = value
    for depth, name in enumerate(names):
        field = descriptor.fields_by_name.get(name) or _by_json_name(descriptor, name)
        if field is None:
            raise _invalid(f"{'.'.join(names[: depth + 1])}: no such field in {descriptor.name}")
        if depth < len(names) - 1:
            if field.message_type is None or field.is_repeated:
                raise _invalid(f"{path}: {name} is not a message field")
            child = target.setdefault(field.name, {})
            if not isinstance(child, dict):
                raise _invalid(f"{path}: set twice")
            target, descriptor = child, field.message_type
            continue
        scalar = text if raw else _scalar(field, text)
        if field.is_repeated and not raw:
            values = target.setdefault(field.name, [])
            if not isinstance(values, list):
                raise _invalid(f"{path}: set twice")
            values.append(scalar)
        else:
            target[field.name] = scalar


def _by_json_name(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if field.json_name == name:
            return field
    return None


def _scalar(field: FieldDescriptor, text: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text not in ("true", "false"):
            raise _invalid(f"{field.name}: expected true or false")
        return text == "true"
    if field.message_type is not None and not field.message_type.full_name.startswith(
        "google.protobuf."
    ):
        raise _invalid(f"{field.name}: a message field cannot come from the URL")
    return text


def to_json(message: Message) -> dict[str, Any]:
    converted: dict[str, Any] = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True
    )
    return converted


def reply(message: Message, response_body: str = "") -> bytes:
    """A reply as one line of JSON (only the `response_body` field when a rule names one)."""
    converted: Any = to_json(message)
    if response_body:
        converted = _response_field(message, converted, response_body)
    return compact(converted)


def _response_field(message: Message, converted: Mapping[str, Any], name: str) -> Any:
    field = message.DESCRIPTOR.fields_by_name.get(name)
    return converted.get(field.json_name) if field is not None else None
