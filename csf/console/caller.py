"""The console's own consumer, one per login: what "try a call" sends its calls through.

It calls as the app `csf-console`, in the login's tenant, with the login's digest: its
own ZooKeeper session, never another login's. The gateway's `Dispatcher` builds each
call, so a tried call passes the consumer's whole filter chain (rules, breaker,
balancing) as a gateway's would. Made on a login's first try and closed at its logout.
"""

from __future__ import annotations

import asyncio
from typing import Any

from csf.config import ZooKeeperURL
from csf.consumer import Consumer
from csf.gateway.catalogue import Method
from csf.gateway.dispatch import Dispatcher
from csf.registry import ZooKeeperRegistry

APP = "csf-console"


class LoggedOut(Exception):
    """The login logged out while its try was waiting."""


class _ConsoleConsumer(Consumer):
    """The rules it applies are told as the console's (the "applied by" nodes)."""

    ROLE = "console"


class Caller:
    """A login's consumer; its session starts with the first call."""

    def __init__(self, url: ZooKeeperURL, tenant: str) -> None:
        self._registry = ZooKeeperRegistry(url)
        self._consumer = _ConsoleConsumer(self._registry, tenant, APP)
        self._dispatcher = Dispatcher(self._consumer)
        self._lock = asyncio.Lock()
        self._started = False
        self._closed = False

    async def unary(self, method: Method, request: Any, seconds: float) -> Any:
        """The reply of one unary call, or the call's grpc.aio.AioRpcError."""
        async with self._lock:
            if self._closed:  # a try still running when its login logged out
                raise LoggedOut("the login has logged out")
            if not self._started:
                await self._registry.start()
                await self._consumer.start()
                self._started = True
            # Only the method being tried is kept ready: a login tries a few by hand.
            self._dispatcher.prepare([method])
        return await self._dispatcher.unary(method, request, seconds, ())

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._started:
                await self._consumer.close()
                await self._registry.close()
