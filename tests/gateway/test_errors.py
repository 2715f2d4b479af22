"""The gateway's error answers: google/rpc/code.proto's HTTP status for every gRPC code,
a provider's details only for the five codes about the caller's own request, and one
compact JSON shape."""

from __future__ import annotations

import json

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csf.gateway.errors import HTTP_STATUS, HttpError, encode, from_rpc
from tests.strategies import examples, long_strings

# google/rpc/code.proto, each code's "HTTP Mapping" comment.
CODE_PROTO = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}
# DESIGN section 6: the codes that describe the caller's own request.
DETAILS_PASS = {
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "FAILED_PRECONDITION",
    "OUT_OF_RANGE",
}
FAILURES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


def test_every_grpc_code_has_the_http_status_of_code_proto() -> None:
    assert {code.name: status for code, status in HTTP_STATUS.items()} == CODE_PROTO
    assert {code.name for code in grpc.StatusCode} == set(CODE_PROTO)


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_a_failed_call_is_answered_with_its_status_and_code_name(code: grpc.StatusCode) -> None:
    error = from_rpc(code, "item 7: asked to fail")
    assert (error.status, error.code) == (CODE_PROTO[code.name], code.name)
    if code.name in DETAILS_PASS:
        assert error.message == "item 7: asked to fail"
    else:
        assert "item 7" not in error.message and error.message


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_internals_in_the_details_never_reach_the_caller_for_other_codes(
    code: grpc.StatusCode,
) -> None:
    leaky = "KazooTimeoutError at /csf/TenantA/sets/hz bucket 17 Traceback"
    error = from_rpc(code, leaky)
    assert (error.message == leaky) is (code.name in DETAILS_PASS)


@pytest.mark.parametrize("name", sorted(DETAILS_PASS))
def test_passed_details_are_cut_and_missing_details_name_the_code(name: str) -> None:
    code = grpc.StatusCode[name]
    assert from_rpc(code, "x" * 5000).message == "x" * 1024
    assert from_rpc(code, None).message == name.lower()
    assert from_rpc(code, "").message == name.lower()


@examples(200)
@given(code=st.sampled_from(FAILURES), details=st.none() | st.text() | long_strings)
def test_any_details_give_the_codes_status_and_a_short_message(
    code: grpc.StatusCode, details: str | None
) -> None:
    error = from_rpc(code, details)
    assert error.status == CODE_PROTO[code.name] and error.code == code.name
    assert 0 < len(error.message) <= 1024
    if code.name not in DETAILS_PASS:
        assert error.message == from_rpc(code, None).message


def test_an_error_is_one_compact_json_line_of_code_message_and_trace_id() -> None:
    error = HttpError(429, "RESOURCE_EXHAUSTED", "too many requests\n", retry_after=1.5)
    printed = encode(error, "0af7651916cd43dd8448eb211c80319c")
    assert b"\n" not in printed and b", " not in printed
    assert json.loads(printed) == {
        "code": "RESOURCE_EXHAUSTED",
        "message": "too many requests\n",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
    }
    assert error.retry_after == 1.5 and str(error) == "too many requests\n"
    assert json.loads(encode(HttpError(400, "INVALID_ARGUMENT", "é ☃"), ""))["message"] == "é ☃"
