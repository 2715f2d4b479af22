"""Deadline propagation: a handler's remaining deadline bounds the calls it makes.

The provider side puts the incoming call's deadline in a contextvar; a CSF call made
inside that handler ends by then at the latest, so A -> B -> C with 300 ms at A
cancels C's work when A's 300 ms are up.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

import grpc

_inherited: ContextVar[float | None] = ContextVar("csf_deadline", default=None)


def inherit(seconds_left: float | None) -> None:
    """Called by the provider side as a handler starts (None: the caller set no deadline)."""
    _inherited.set(None if seconds_left is None else time.monotonic() + seconds_left)


def deadline_exceeded() -> grpc.aio.AioRpcError:
    """The error of a call whose deadline passed before it was sent, as gRPC words it."""
    return grpc.aio.AioRpcError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        "Deadline Exceeded",
        None,
    )


def deadline_after(timeout: float) -> float:
    """The monotonic deadline of a call given `timeout`, capped by an inherited one."""
    own = time.monotonic() + timeout
    inherited = _inherited.get()
    return own if inherited is None or own < inherited else inherited
