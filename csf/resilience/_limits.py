"""What the consumer and provider limits share: waiting for a permit within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


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
