"""What counts as a failure of the provider, as opposed to an answer the caller dislikes.

Breakers, outlier ejection and fallbacks count these; a business error such as
INVALID_ARGUMENT or NOT_FOUND is the provider working as designed.
"""

from __future__ import annotations

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
