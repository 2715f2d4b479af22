"""CSF: asyncio RPC microservice governance on gRPC, with ZooKeeper as the registry."""

from __future__ import annotations

from csf._chain import DEFAULT_CONSUMER_CHAIN, FilterFactory
from csf._exceptions import (
    CircuitOpenError,
    ConcurrencyLimitError,
    ConfigError,
    CsfError,
    DegradedError,
    InvocationError,
    NoProviderError,
    NoSetKeyError,
    RateLimitedError,
    RegistryError,
)
from csf._guards import DEFAULT_PROVIDER_CHAIN, GuardContext, GuardFactory
from csf._handlers import Guard
from csf._invocation import Filter, Invocation, Invoker, MethodContext, compose
from csf.auth import CallerAuth, origin_app
from csf.channel import GovernedChannel
from csf.config import EMPTY_REPLY, MethodConfig
from csf.consumer import Consumer
from csf.observability import Observability
from csf.provider import provider
from csf.server import Server
from csf.tls import TLSConfig

__all__ = [
    "CallerAuth",
    "CircuitOpenError",
    "ConcurrencyLimitError",
    "ConfigError",
    "Consumer",
    "CsfError",
    "DEFAULT_CONSUMER_CHAIN",
    "DEFAULT_PROVIDER_CHAIN",
    "DegradedError",
    "EMPTY_REPLY",
    "Filter",
    "FilterFactory",
    "GovernedChannel",
    "Guard",
    "GuardContext",
    "GuardFactory",
    "Invocation",
    "InvocationError",
    "Invoker",
    "MethodConfig",
    "MethodContext",
    "NoProviderError",
    "NoSetKeyError",
    "Observability",
    "RateLimitedError",
    "RegistryError",
    "Server",
    "TLSConfig",
    "compose",
    "origin_app",
    "provider",
]
