"""Which apps may call each service code: its `subscriptions/` children, watched through
the gateway's one registry session while the code has descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import Set

from csf.registry import Registry, Subscription


class _Watched:
    __slots__ = ("apps", "listed", "subscription")

    def __init__(self) -> None:
        self.apps: frozenset[str] = frozenset()
        self.listed = asyncio.Event()
        self.subscription: Subscription | None = None

    def update(self, apps: frozenset[str]) -> None:
        self.apps = apps
        self.listed.set()


class Subscribers:
    def __init__(self, registry: Registry, tenant: str) -> None:
        self._registry = registry
        self._tenant = tenant
        self._watched: dict[str, _Watched] = {}
        self._cancelling: set[asyncio.Task[None]] = set()

    def follow(self, codes: Set[str]) -> None:
        """Watch the subscriptions of exactly these service codes."""
        for code in codes - self._watched.keys():
            watched = self._watched[code] = _Watched()
            watched.subscription = self._registry.subscribe_subscribers(
                self._tenant, code, watched.update
            )
        for code in self._watched.keys() - codes:
            gone = self._watched.pop(code).subscription
            if gone is not None:
                task = asyncio.get_running_loop().create_task(gone.cancel())
                self._cancelling.add(task)
                task.add_done_callback(self._cancelling.discard)

    async def subscribed(self, code: str, app: str, within: float) -> bool | None:
        """Whether `app` is subscribed to `code`; None when the first listing has not come
        within `within` seconds."""
        watched = self._watched.get(code)
        if watched is None:
            return False
        if not watched.listed.is_set():
            try:
                await asyncio.wait_for(watched.listed.wait(), within)
            except TimeoutError:
                return None
        return app in watched.apps

    async def close(self) -> None:
        watched, self._watched = self._watched, {}
        for each in watched.values():
            if each.subscription is not None:
                await each.subscription.cancel()
        await asyncio.gather(*self._cancelling)
