"""What tracing and metrics both read off a call: its names, its code, what refused it."""

from __future__ import annotations

from typing import Any

from csf._exceptions import (
    CircuitOpenError,
    ConcurrencyLimitError,
    DegradedError,
    NoProviderError,
    RateLimitedError,
)

REFUSALS: dict[type[BaseException], str] = {
    CircuitOpenError: "breaker",
    DegradedError: "degrade",
    RateLimitedError: "rate_limit",
    ConcurrencyLimitError: "concurrency",
    NoProviderError: "no_provider",
}


def rpc_names(method: str) -> tuple[str, str]:
    """'/demo.Greeter/SayHello' -> ('demo.Greeter', 'SayHello')."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def rpc_attributes(method: str) -> dict[str, Any]:
    service, name = rpc_names(method)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def refused_by(error: BaseException | None) -> str | None:
    """Which CSF limit refused the call, if one did."""
    return REFUSALS.get(type(error)) if error is not None else None
