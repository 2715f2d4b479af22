"""What an operator types into "try a call" as properties: whatever the timeout field or
the JSON request holds, the console gets a bounded number of seconds or a request
message, or refuses saying which field is wrong; never another exception."""

from __future__ import annotations

import json
import math

from google.protobuf import descriptor_pb2
from google.protobuf.message import Message
from hypothesis import example, given
from hypothesis import strategies as st

from csf.console.call_pages import MAX_TIMEOUT_S, _request, _timeout
from csf.console.web import Refusal
from csf.gateway.catalogue import Method

# A message with int32, string, enum and nested message fields, and no .proto to build.
METHOD = Method(
    "SVC",
    "pkg.Svc",
    "Put",
    "unary_unary",
    descriptor_pb2.FieldDescriptorProto,
    descriptor_pb2.FieldDescriptorProto,
    (),
)


@given(st.text(max_size=40))
@example("nan")
@example("inf")
@example("-0")
@example("1e-320")
@example("30.000001")
def test_a_timeout_is_a_bounded_number_of_seconds_or_refused(text: str) -> None:
    try:
        seconds = _timeout(text)
    except Refusal as refused:
        assert str(refused).startswith("timeout: ") and refused.status == 400
        return
    assert math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S


@given(st.text(max_size=200))
@example('{"number": 1e400}')
@example('{"label": "NOPE"}')
@example('{"options": {"packed": "yes"}}')
@example("[" * 5000)
@example('{"name": "\\ud800"}')
def test_any_json_text_is_a_request_or_refused_naming_the_field(text: str) -> None:
    try:
        message = _request(METHOD, text)
    except Refusal as refused:
        assert str(refused).startswith("json: ") and refused.status == 400
        return
    assert isinstance(message, Message)


@given(st.integers(-(2**31), 2**31 - 1), st.text(max_size=50))
def test_an_accepted_request_holds_the_values_sent(number: int, name: str) -> None:
    message = _request(METHOD, json.dumps({"number": number, "name": name}))
    assert (message.number, message.name) == (number, name)  # type: ignore[attr-defined]
