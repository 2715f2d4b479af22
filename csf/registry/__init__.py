"""Registries: where providers publish themselves and consumers find them."""

from __future__ import annotations

from csf.config import StaticURL, parse_registry_url
from csf.registry._base import (
    DescriptorsListener,
    LifecycleListener,
    ProviderListener,
    Registration,
    Registry,
    RuleListener,
    ServiceKey,
    SubscribersListener,
    Subscription,
)
from csf.registry.instance import Instance, InstanceFormatError
from csf.registry.rejections import Rejections
from csf.registry.static import StaticRegistry
from csf.registry.zookeeper import ZooKeeperRegistry

__all__ = [
    "DescriptorsListener",
    "Instance",
    "InstanceFormatError",
    "LifecycleListener",
    "ProviderListener",
    "Registration",
    "Registry",
    "Rejections",
    "RuleListener",
    "ServiceKey",
    "StaticRegistry",
    "SubscribersListener",
    "Subscription",
    "ZooKeeperRegistry",
    "open_registry",
]


def open_registry(url: str, *, startup_wait: float) -> Registry:
    """The registry a `registry=` URL names; raises ConfigError for a bad URL."""
    parsed = parse_registry_url(url)
    if isinstance(parsed, StaticURL):
        return StaticRegistry(parsed)
    return ZooKeeperRegistry(parsed, startup_wait=startup_wait)
