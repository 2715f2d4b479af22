"""What the gateway answers when a request fails: one JSON shape, the status of
google/rpc/code.proto's HTTP mapping, and no internals for an outside caller.

A provider's message passes through only for the codes that describe the caller's own
request (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
OUT_OF_RANGE); every other code gets a fixed text, so exception names, ZooKeeper state,
SET names or bucket numbers never reach the outside.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from csf._exceptions import REFUSED_BY_KEY, InvocationError

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

PASSED_THROUGH = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
})  # fmt: skip

FIXED_TEXT: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INVALID_ARGUMENT: "the service refused the request",
    grpc.StatusCode.NOT_FOUND: "not found",
    grpc.StatusCode.ALREADY_EXISTS: "already exists",
    grpc.StatusCode.FAILED_PRECONDITION: "the service cannot take this call now",
    grpc.StatusCode.OUT_OF_RANGE: "out of range",
    grpc.StatusCode.CANCELLED: "the call was cancelled",
    grpc.StatusCode.UNKNOWN: "the service failed",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the service did not answer in time",
    grpc.StatusCode.PERMISSION_DENIED: "the service refused the caller",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "too many requests",
    grpc.StatusCode.ABORTED: "the call was aborted",
    grpc.StatusCode.UNIMPLEMENTED: "the service does not implement this method",
    grpc.StatusCode.INTERNAL: "the service failed",
    grpc.StatusCode.UNAVAILABLE: "the service is unavailable",
    grpc.StatusCode.DATA_LOSS: "the service failed",
    grpc.StatusCode.UNAUTHENTICATED: "the service refused the caller's credentials",
}

MAX_DETAILS = 1024  # a provider's message, cut: it goes into every error line


class HttpError(Exception):
    """A request the gateway answers with an error of its own (never a provider's)."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


def from_rpc(code: grpc.StatusCode, details: str | None, *, by_csf: bool = False) -> HttpError:
    """The answer to a call that failed with `code`. `by_csf`: CSF itself refused the
    call (its consumer chain, or a provider's guard), and its words are for operators:
    the caller gets a fixed text whatever the code. A caller told RESOURCE_EXHAUSTED may
    try again after a second."""
    if code in PASSED_THROUGH and not by_csf:
        text = (details or code.name.lower())[:MAX_DETAILS]
    else:
        text = FIXED_TEXT.get(code, "the service failed")
    retry_after = 1.0 if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    return HttpError(HTTP_STATUS.get(code, 500), code.name, text, retry_after)


def refused_by_csf(error: grpc.aio.AioRpcError) -> bool:
    """Whether CSF refused the call: an error of the consumer's chain, or a provider
    guard's refusal (which names itself in the trailing metadata)."""
    if isinstance(error, InvocationError):
        return True
    trailing: Any = error.trailing_metadata()  # grpc.aio.Metadata, typed as a tuple
    return trailing is not None and trailing.get(REFUSED_BY_KEY) is not None


def encode(error: HttpError, trace_id: str) -> bytes:
    return compact({"code": error.code, "message": error.message, "trace_id": trace_id})


def compact(value: object) -> bytes:
    """One-line JSON, as every reply, NDJSON line and SSE event is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
