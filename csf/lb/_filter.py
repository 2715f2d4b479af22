"""The `load_balance` filter: choose the endpoint for this attempt and count it busy.

The one place calls are counted on endpoints, unary calls and streams alike: `done =
endpoint.begin(...)` as the attempt starts, `done(code)` when it is over (a stream: when
it ends, not when it opens).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from csf._exceptions import NoProviderError
from csf._invocation import Invocation, Invoker, LifecycleGate, PickerRef, ProviderPools
from csf.resilience.classify import status_of
from csf.resilience.deadline import deadline_exceeded


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _channel_closed(address: str) -> grpc.aio.AioRpcError:
    """The call was cancelled under us (its channel closed), not by its caller: to the
    caller that is a provider gone away, UNAVAILABLE, which failover may retry."""
    details = f"the channel to {address} was closed during the call"
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None
    )


class LoadBalanceFilter:
    """Refuses calls while the method's gRPC service is offline (NoProviderError)."""

    __slots__ = ("_directory", "_lifecycle", "_ref")

    def __init__(
        self, directory: ProviderPools, ref: PickerRef, lifecycle: LifecycleGate | None = None
    ) -> None:
        self._directory = directory
        self._ref = ref
        self._lifecycle = lifecycle

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        lifecycle = self._lifecycle
        if lifecycle is not None and not lifecycle.serving:
            raise NoProviderError(lifecycle.refusal)
        ref = inv.pool or self._ref
        picker = ref.picker
        endpoint = picker.pick(inv) if picker is not None else None
        if endpoint is None:
            endpoint = await self._directory.pick(ref, inv)
        inv.endpoint = endpoint
        inv.tried.add(endpoint.address)
        deadline = inv.attempt_deadline or inv.deadline
        if deadline <= time.monotonic():  # never sent: no mark against the provider
            raise deadline_exceeded()
        done = endpoint.begin(deadline, timed=not inv.streaming)
        try:
            result = await next(inv)
        except asyncio.CancelledError as error:
            if _being_cancelled():
                done(grpc.StatusCode.CANCELLED)
                raise
            done(grpc.StatusCode.UNAVAILABLE)
            raise _channel_closed(endpoint.address) from error
        except BaseException as error:
            done(status_of(error))
            raise
        if inv.streaming:
            inv.on_end(done)
        else:
            done(grpc.StatusCode.OK)
        return result
