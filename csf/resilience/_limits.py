"""What the consumer and provider limits share: waiting for a permit within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import grpc


async def acquire_within(acquire: Awaitable[object], seconds: float) -> bool:
    """Await `acquire` for at most `seconds`; False if it did not complete in time."""
    if seconds <= 0:
        if asyncio.iscoroutine(acquire):
            acquire.close()
        return False
    try:
        await asyncio.wait_for(acquire, seconds)
    except TimeoutError:
        return False
    return True


async def admit_or_abort(
    context: grpc.aio.ServicerContext[Any, Any],
    acquire: Awaitable[object],
    max_wait: float,
    refusal: str,
) -> None:
    """Provider side: await `acquire` up to `max_wait` within the call's deadline, or
    answer the call RESOURCE_EXHAUSTED (context.abort raises)."""
    left = context.time_remaining()
    wait = max_wait if left is None else min(max_wait, left)
    if not await acquire_within(acquire, wait):
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
