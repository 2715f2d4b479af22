"""What every registry offers: register an instance, and watch a service's providers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from csf.registry.instance import Instance
from csf.registry.paths import instance_path


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


RuleListener = Callable[[bytes | None], None]
"""Receives a rule document's bytes (None when there is none); called on the event loop."""


class Subscription(Protocol):
    async def cancel(self) -> None: ...


class Registry(Protocol):
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
