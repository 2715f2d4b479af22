"""What every registry offers: register an instance; watch a service's providers, its
rules, its subscribers and its gRPC services' lifecycle, and a tenant's descriptors; tell
which version of each rule this process applied."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from csf.registry.instance import Instance
from csf.registry.paths import instance_path
from csf.registry.rejections import Rejections


@dataclass(frozen=True, slots=True)
class ServiceKey:
    tenant: str
    service: str
    cluster: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.service}/{self.cluster}"


@dataclass(frozen=True, slots=True)
class Registration:
    key: ServiceKey
    instance: Instance

    @property
    def path(self) -> str:
        k = self.key
        return instance_path(
            k.tenant, k.service, k.cluster, self.instance.group, self.instance.address
        )


class ProviderListener(Protocol):
    """Receives full provider lists; called on the event loop."""

    def on_providers(self, instances: Sequence[Instance]) -> None: ...

    def on_unavailable(self) -> None:
        """The registry could not be reached before the first listing."""


RuleListener = Callable[[bytes | None, int], None]
"""Receives a rule document's bytes and its version (the node's ZooKeeper stat.version),
or (None, -1) when there is none; called on the event loop."""
SubscribersListener = Callable[[frozenset[str]], None]
"""Receives the names of the apps subscribed to a service; called on the event loop."""
LifecycleListener = Callable[[str | None], None]
"""Receives a gRPC service's lifecycle status (None when it has no descriptor); called on
the event loop."""
DescriptorsListener = Callable[[Mapping[tuple[str, str], bytes]], None]
"""Receives every descriptor node of a tenant, (service code, gRPC service) -> its bytes;
called on the event loop."""


class Subscription(Protocol):
    async def cancel(self) -> None: ...


@runtime_checkable
class Registry(Protocol):
    @property
    def holds_subscriptions(self) -> bool:
        """Whether it keeps which apps may call a service (`subscribe_subscribers`)."""

    @property
    def connected(self) -> bool:
        """Whether the registry answers now; while it does not, watchers keep their last
        good view (a registry without a server is always connected)."""

    @property
    def rejections(self) -> Rejections:
        """The items it read and refused, each told (logged, counted) once; the rules
        read through it tell theirs here too. Its owner says where to count them."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def register(self, registration: Registration) -> None:
        """Publish an instance and keep it published (across sessions) until deregistered."""

    async def deregister(self, registration: Registration) -> None: ...

    def subscribe(self, key: ServiceKey, listener: ProviderListener) -> Subscription:
        """Deliver the full provider list to `listener` now and after every change."""

    def subscribe_rule(
        self, tenant: str, service: str, kind: str, listener: RuleListener
    ) -> Subscription:
        """Deliver the rule document `configs/<kind>` of a service now and on every change."""

    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        """Keep `document` in the ephemeral node `applied/<kind>/<process>` of a service
        (csf.registry.applied), or remove that node (None). Returns at once and never
        raises: the node is written in the background, the last document wins, and it is
        kept across sessions until removed or the registry closes."""

    def subscribe_subscribers(
        self, tenant: str, service: str, listener: SubscribersListener
    ) -> Subscription:
        """Deliver the apps subscribed to a service now and on every change."""

    def subscribe_lifecycle(
        self, tenant: str, service: str, grpc_service: str, listener: LifecycleListener
    ) -> Subscription:
        """Deliver the lifecycle status of one gRPC service of a service now and on every
        change: None while it has no descriptor; data without a known status is skipped
        with a warning, keeping the last good status."""

    def subscribe_descriptors(self, tenant: str, listener: DescriptorsListener) -> Subscription:
        """Deliver every descriptor under the tenant's `<service>/services/` now and after
        every change (the bytes as stored: parsing them is the reader's job)."""
