"""CSF: asyncio RPC microservice governance on gRPC, with ZooKeeper as the registry."""

from __future__ import annotations

from csf._chain import DEFAULT_CONSUMER_CHAIN, FilterFactory, MethodContext
from csf._exceptions import (
    CircuitOpenError,
    ConcurrencyLimitError,
    ConfigError,
    CsfError,
    InvocationError,
    NoProviderError,
    RateLimitedError,
    RegistryError,
)
from csf._invocation import Filter, Invocation, Invoker, compose
from csf.auth import CallerAuth
from csf.channel import GovernedChannel
from csf.config import MethodConfig
from csf.consumer import Consumer
from csf.observability import Observability
from csf.provider import Server, provider
from csf.tls import TLSConfig

__all__ = [
    "CallerAuth",
    "CircuitOpenError",
    "ConcurrencyLimitError",
    "ConfigError",
    "Consumer",
    "CsfError",
    "DEFAULT_CONSUMER_CHAIN",
    "Filter",
    "FilterFactory",
    "GovernedChannel",
    "Invocation",
    "InvocationError",
    "Invoker",
    "MethodConfig",
    "MethodContext",
    "NoProviderError",
    "Observability",
    "RateLimitedError",
    "RegistryError",
    "Server",
    "TLSConfig",
    "compose",
    "provider",
]
