"""A bounded, paced load on 127.0.0.1: `rate` calls a second for `seconds`, each in its
own task so a slow call does not slow the offered rate."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc


@dataclass
class LoadResult:
    offered: int = 0
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    replies: list[Any] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def summary(self) -> str:
        return (
            f"{self.offered} calls, {self.ok} ok, {self.failed} failed {dict(self.failures)}, "
            f"slowest {self.slowest * 1000:.0f} ms"
        )


async def paced(
    call: Callable[[], Awaitable[Any]],
    rate: float,
    seconds: float,
    result: LoadResult | None = None,
) -> LoadResult:
    """Run the load; pass `result` to watch it grow while the load runs."""
    result = result if result is not None else LoadResult()

    async def one(result: LoadResult = result) -> None:
        started = time.monotonic()
        try:
            result.replies.append(await call())
            result.ok += 1
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
            result.failures[getattr(code, "name", repr(error))] += 1
        result.slowest = max(result.slowest, time.monotonic() - started)

    tasks = []
    start = time.monotonic()
    total = int(rate * seconds)
    for index in range(total):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one()))
        result.offered += 1
    await asyncio.gather(*tasks)
    return result
