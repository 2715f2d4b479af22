"""CSF's error tree.

CsfError
├── ConfigError                 a bad setting or registry URL (not an RPC error)
├── RegistryError               the registry refused or could not do an operation
└── InvocationError             also grpc.aio.AioRpcError, so `except grpc.RpcError` works
    ├── NoProviderError         UNAVAILABLE: no provider to send the call to
    ├── CircuitOpenError        UNAVAILABLE: the circuit breaker is open
    │   └── DegradedError       UNAVAILABLE: a `degrade` rule holds and there is no fallback
    ├── RateLimitedError        RESOURCE_EXHAUSTED: a token bucket rejected the call
    ├── ConcurrencyLimitError   RESOURCE_EXHAUSTED: too many calls in flight
    └── NoSetKeyError           FAILED_PRECONDITION: a SET-ized call has no key, nor a SET
"""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

REFUSED_BY_KEY = "csf-refused-by"
"""Trailing metadata a provider's own guard adds to a call it refuses, naming the guard
(as `csf.rejected_by` names a consumer's filter), so a gateway can tell CSF's words from
the handler's."""


class CsfError(Exception):
    """The root of every error CSF raises itself."""


class ConfigError(CsfError, ValueError):
    """A configuration value or registry URL is invalid; the message names the field."""


class RegistryError(CsfError):
    """The registry could not carry out an operation."""


class InvocationError(CsfError, AioRpcError):
    """A call failed inside CSF before or instead of reaching a provider."""

    code_for_class: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, details: str) -> None:
        AioRpcError.__init__(self, self.code_for_class, Metadata(), Metadata(), details, None)


class NoProviderError(InvocationError):
    """UNAVAILABLE: the service has no provider this call may go to."""

    code_for_class = grpc.StatusCode.UNAVAILABLE


class CircuitOpenError(InvocationError):
    """UNAVAILABLE: the method's circuit breaker is open."""

    code_for_class = grpc.StatusCode.UNAVAILABLE


class DegradedError(CircuitOpenError):
    """UNAVAILABLE: a `degrade` rule covers the method and it has no fallback."""


class RateLimitedError(InvocationError):
    """RESOURCE_EXHAUSTED: the consumer's token bucket had no token in time."""

    code_for_class = grpc.StatusCode.RESOURCE_EXHAUSTED


class ConcurrencyLimitError(InvocationError):
    """RESOURCE_EXHAUSTED: too many of the method's calls were in flight."""

    code_for_class = grpc.StatusCode.RESOURCE_EXHAUSTED


class NoSetKeyError(InvocationError):
    """FAILED_PRECONDITION: a call of a SET-ized service has no SET key, and its consumer
    no SET of its own to send it to."""

    code_for_class = grpc.StatusCode.FAILED_PRECONDITION
