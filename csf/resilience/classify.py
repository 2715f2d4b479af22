"""What counts as a failure of the provider, as opposed to an answer the caller dislikes.

Breakers, outlier ejection and fallbacks count these; a business error such as
INVALID_ARGUMENT or NOT_FOUND is the provider working as designed.
"""

from __future__ import annotations

import asyncio

import grpc

FAILURE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def is_failure(code: grpc.StatusCode) -> bool:
    return code in FAILURE_CODES


def status_of(error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with, from the error it raised (None: OK)."""
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code()
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN
