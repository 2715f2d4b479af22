"""The provider side's declaration: `@provider` marks a generated servicer's subclass as
a provider of one microservice, and records what a server needs to serve it.

`csf.server.Server` serves and registers what is declared here; csf-registry reads the
same declaration to export a provider's service descriptors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from csf import bounds
from csf._exceptions import ConfigError
from csf._handlers import Guards, guarded
from csf.config import (
    DEFAULT_GROUP,
    DEFAULT_WARMUP,
    DEFAULT_WEIGHT,
    check_name,
    check_tags,
)

if TYPE_CHECKING:
    from csf._handlers import Handler

ServicerT = TypeVar("ServicerT", bound=type)


@dataclass(frozen=True)
class ProviderSpec:
    """What `@provider` records on a servicer class."""

    service: str
    version: str = ""
    weight: int = DEFAULT_WEIGHT
    group: str = DEFAULT_GROUP
    tags: Mapping[str, str] = field(default_factory=dict)
    warmup: float = DEFAULT_WARMUP
    executes: int | None = None


def provider(
    *,
    service: str,
    version: str = "",
    weight: int = DEFAULT_WEIGHT,
    group: str = DEFAULT_GROUP,
    tags: Mapping[str, str] | None = None,
    warmup: float = DEFAULT_WARMUP,
    executes: int | None = None,
) -> Callable[[ServicerT], ServicerT]:
    """Mark a generated servicer's subclass as a provider of microservice `service`.

    Consumers ramp a new provider's `weight` up linearly over `warmup` seconds from
    its start (0: full weight at once). At most `executes` handlers of each method run
    at once (Dubbo's executes; the `concurrency` rule's `provider` overrides it); the
    rest are refused with RESOURCE_EXHAUSTED. Raises ConfigError for a bad value.
    """
    if not isinstance(version, str):
        raise ConfigError(f"version: expected a string, got {version!r}")
    spec = ProviderSpec(
        service=check_name("service", service),
        version=version,
        weight=bounds.WEIGHT.check_whole("weight", weight, ConfigError),
        group=check_name("group", group),
        tags=check_tags("tags", tags or {}),
        warmup=bounds.WARMUP_S.check("warmup", warmup, ConfigError),
        executes=None
        if executes is None
        else bounds.CALLS.check_whole("executes", executes, ConfigError),
    )

    def mark(cls: ServicerT) -> ServicerT:
        cls.__csf_provider__ = spec  # type: ignore[attr-defined]
        return cls

    return mark


def provider_spec(servicer: object) -> ProviderSpec:
    spec = getattr(type(servicer), "__csf_provider__", None)
    if not isinstance(spec, ProviderSpec):
        raise ConfigError(
            f"servicer: {type(servicer).__name__} is not decorated with @csf.provider"
        )
    return spec


def find_add_function(servicer: object) -> Callable[[Any, Any], None]:
    """The generated `add_<Base>_to_server` of the servicer's generated base class."""
    for base in type(servicer).__mro__:
        module = sys.modules.get(base.__module__)
        add = getattr(module, f"add_{base.__name__}_to_server", None)
        if callable(add):
            return add  # type: ignore[no-any-return]
    raise ConfigError(
        f"servicer: {type(servicer).__name__} has no generated servicer base class "
        "(one whose module defines add_<Base>_to_server)"
    )


class _HandlerRecorder:
    """Stands in for a server while generated code adds a servicer, to learn its handlers."""

    def __init__(self) -> None:
        self.method_handlers: dict[str, dict[str, Handler]] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        """Generated code adds the same handlers by name too; those are the ones kept."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self.method_handlers[service] = handlers

    def install(self, server: grpc.aio.Server, guards: Callable[[str], Guards]) -> None:
        """Add the handlers to `server`, each wrapped in the guards of its method path."""
        for service, handlers in self.method_handlers.items():
            wrapped = {
                name: guarded(handler, guards(f"/{service}/{name}"))
                for name, handler in handlers.items()
            }
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, wrapped),)
            )
            server.add_registered_method_handlers(service, wrapped)  # type: ignore[attr-defined]
