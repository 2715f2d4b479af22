"""`static://h:p,...`: fixed providers and no registry (Dubbo's `url=` direct connect)."""

from __future__ import annotations

import asyncio

from csf.config import StaticURL
from csf.registry._base import (
    DescriptorsListener,
    LifecycleListener,
    ProviderListener,
    Registration,
    RuleListener,
    ServiceKey,
    SubscribersListener,
    Subscription,
)
from csf.registry.instance import Instance
from csf.registry.rejections import Rejections


class _StaticSubscription:
    def __init__(self, handle: asyncio.Handle | None) -> None:
        self._handle = handle

    async def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


class StaticRegistry:
    holds_subscriptions = False
    connected = True  # nothing to lose: the addresses are in the URL

    def __init__(self, url: StaticURL) -> None:
        self._instances = tuple(Instance(host=host, port=port) for host, port in url.addresses)
        self.rejections = Rejections()  # it reads nothing, so refuses nothing

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def register(self, registration: Registration) -> None:
        """Nothing to publish to: consumers are told the addresses directly."""

    async def deregister(self, registration: Registration) -> None:
        pass

    def subscribe(self, key: ServiceKey, listener: ProviderListener) -> Subscription:
        handle = asyncio.get_running_loop().call_soon(listener.on_providers, self._instances)
        return _StaticSubscription(handle)

    def subscribe_rule(
        self, tenant: str, service: str, kind: str, listener: RuleListener
    ) -> Subscription:
        """Direct connection has no rules: there is none, now and later."""
        listener(None, -1)
        return _StaticSubscription(None)

    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        """Nobody to tell: there are no rules to have applied."""

    def subscribe_subscribers(
        self, tenant: str, service: str, listener: SubscribersListener
    ) -> Subscription:
        """Direct connection keeps no subscriptions: nothing is ever delivered."""
        return _StaticSubscription(None)

    def subscribe_lifecycle(
        self, tenant: str, service: str, grpc_service: str, listener: LifecycleListener
    ) -> Subscription:
        """Direct connection has no descriptors: None, once."""
        handle = asyncio.get_running_loop().call_soon(listener, None)
        return _StaticSubscription(handle)

    def subscribe_descriptors(self, tenant: str, listener: DescriptorsListener) -> Subscription:
        """Direct connection has no descriptors: none, once."""
        handle = asyncio.get_running_loop().call_soon(listener, {})
        return _StaticSubscription(handle)
