"""The provider side: `@provider` marks a servicer class, `Server` serves and registers it.

`Server` runs a `grpc.aio` server with the gRPC health service, and registers one
ephemeral znode per (microservice, group) it serves. Stopping it (leaving
`async with`, `stop()`, SIGTERM or SIGINT) deregisters first, keeps serving while
consumers notice, turns health to NOT_SERVING, drains in-flight calls and stops.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from csf._exceptions import ConfigError
from csf._handlers import Guard, guarded
from csf.auth import AuthGuard, CallerAuth, Subscribers
from csf.config import (
    DEFAULT_CLUSTER,
    DEFAULT_DEREGISTER_WAIT,
    DEFAULT_GROUP,
    DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_STARTUP_WAIT,
    DEFAULT_WARMUP,
    DEFAULT_WEIGHT,
    check_count,
    check_name,
    check_tags,
    check_timeout,
)
from csf.observability import Observability
from csf.observability.metrics import ServerMetricsGuard
from csf.observability.tracing import ServerTracingGuard
from csf.registry import (
    Instance,
    Registration,
    Registry,
    ServiceKey,
    Subscription,
    ZooKeeperRegistry,
    open_registry,
)
from csf.resilience.concurrency import ExecutesGuard
from csf.resilience.ratelimit import RateLimitGuard
from csf.rule_set import ServiceRules
from csf.rules import ConcurrencyRule, RateLimitRule
from csf.tls import TLSConfig

if TYPE_CHECKING:
    from csf._handlers import Handler

logger = logging.getLogger("csf.provider")

ServicerT = TypeVar("ServicerT", bound=type)
T = TypeVar("T")

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    # Consumers ping every 10 s; accept that instead of answering GOAWAY (too_many_pings).
    # The key is GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS's value: gRPC
    # ignores unknown keys, and its default of 5 minutes drops busy connections.
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # One host:port is one registered provider: never share a port with another process.
    ("grpc.so_reuseport", 0),
)
# gRPC's own defaults; bigger messages get RESOURCE_EXHAUSTED, bigger metadata is refused.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_METADATA_BYTES = 8 * 1024
# How long start() waits for the first registration before serving unregistered.
REGISTER_WAIT = 10.0


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
    if warmup != 0:
        check_timeout("warmup", warmup)
    if executes is not None:
        check_count("executes", executes, minimum=1)
    spec = ProviderSpec(
        service=check_name("service", service),
        version=version,
        weight=check_count("weight", weight),
        group=check_name("group", group),
        tags=check_tags("tags", tags or {}),
        warmup=float(warmup),
        executes=executes,
    )

    def mark(cls: ServicerT) -> ServicerT:
        cls.__csf_provider__ = spec  # type: ignore[attr-defined]
        return cls

    return mark


def _checked(value: Any, kind: type[T], name: str) -> T | None:
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{name}: expected csf.{kind.__name__} or None, got {value!r}")
    return value


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

    def install(self, server: grpc.aio.Server, guards: Callable[[str], list[Guard]]) -> None:
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


@dataclass
class _Served:
    """The servicers of one (microservice, group): they share one znode."""

    spec: ProviderSpec
    recorders: list[_HandlerRecorder] = field(default_factory=list)

    def grpc_services(self) -> dict[str, tuple[str, ...]]:
        return {
            name: tuple(handlers)
            for recorder in self.recorders
            for name, handlers in recorder.method_handlers.items()
        }


class Server:
    """A grpc.aio server that registers what it serves and leaves gracefully.

    `registry` is a `zk://` or `static://` URL; `host`/`port` are bound (port 0: any
    free one) and advertised unless `advertise_host` is given (required for a wildcard
    host). Stopping waits `deregister_wait` seconds after deregistering and gives
    in-flight calls `grace` seconds. Raises ConfigError for a bad value.
    """

    def __init__(
        self,
        registry: str,
        tenant: str,
        cluster: str = DEFAULT_CLUSTER,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        advertise_host: str | None = None,
        grace: float = DEFAULT_SHUTDOWN_GRACE,
        deregister_wait: float = DEFAULT_DEREGISTER_WAIT,
        handle_signals: bool = True,
        observability: Observability | None = None,
        tls: TLSConfig | None = None,
        auth: CallerAuth | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES,
    ) -> None:
        self.tenant = check_name("tenant", tenant)
        self.cluster = check_name("cluster", cluster)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536:
            raise ConfigError(f"port: expected 0..65535, got {port!r}")
        wildcard = host in ("0.0.0.0", "::", "")
        if wildcard and advertise_host is None:
            raise ConfigError(f"advertise_host: required when host is {host!r}")
        self.host = host
        self.port = port
        self.advertise_host = advertise_host or host
        self.grace = check_timeout("grace", grace)
        if deregister_wait != 0:
            check_timeout("deregister_wait", deregister_wait)
        self.deregister_wait = float(deregister_wait)
        self._handle_signals = handle_signals
        self._telemetry = (observability or Observability()).resolve(f"csf-provider {tenant}")
        self._registry: Registry = open_registry(registry, startup_wait=DEFAULT_STARTUP_WAIT)
        self._tls = _checked(tls, TLSConfig, "tls")
        self._auth = _checked(auth, CallerAuth, "auth")
        if (
            auth is not None
            and auth.require_subscription
            and not isinstance(self._registry, ZooKeeperRegistry)
        ):
            raise ConfigError("auth.require_subscription: needs a zk:// registry")
        limits = (
            (
                "grpc.max_receive_message_length",
                check_count("max_message_bytes", max_message_bytes),
            ),
            # Soft and hard limit alike, so every oversized call is refused, not some.
            ("grpc.max_metadata_size", check_count("max_metadata_bytes", max_metadata_bytes)),
            ("grpc.absolute_max_metadata_size", max_metadata_bytes),
        )
        self._options = (*SERVER_OPTIONS, *limits)
        self._subscribers: dict[str, Subscribers] = {}
        self._subscriptions: list[Subscription] = []
        self._served: dict[tuple[str, str], _Served] = {}
        self._rules: dict[str, ServiceRules] = {}
        self._registrations: list[Registration] = []
        self._server: grpc.aio.Server | None = None
        self._health = health_aio.HealthServicer()
        self._stopping: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._signals: list[signal.Signals] = []

    @property
    def address(self) -> str:
        return f"{self.advertise_host}:{self.port}"

    @property
    def registrations(self) -> list[Registration]:
        return list(self._registrations)

    @property
    def registry(self) -> Registry:
        return self._registry

    def add(self, servicer: object) -> None:
        """Serve `servicer`, an instance of a `@csf.provider` class. Call before start()."""
        if self._server is not None:
            raise RuntimeError("add() servicers before the server starts")
        spec = provider_spec(servicer)
        recorder = _HandlerRecorder()
        find_add_function(servicer)(servicer, recorder)
        served = self._served.setdefault((spec.service, spec.group), _Served(spec))
        if served.spec != spec:
            raise ConfigError(
                f"servicer: {type(servicer).__name__} differs in version, weight, tags or "
                f"warmup from another provider of {spec.service} in group {spec.group}"
            )
        served.recorders.append(recorder)

    async def start(self) -> None:
        """Bind, serve and register. Raises ConfigError (e.g. a port in use) or
        RegistryError (ZooKeeper refused the registration), having released all it took."""
        if not self._served:
            raise ConfigError("servicer: add() at least one @csf.provider servicer before start()")
        await self._registry.start()
        server = grpc.aio.server(options=self._options)
        try:
            await self._serve(server)
            self._registrations = [self._registration(s) for s in self._served.values()]
            await self._register_all()
        except BaseException:
            await server.stop(None)
            await self._release()
            raise
        self._install_signal_handlers()
        logger.info("serving %s on %s", sorted(s for s, _ in self._served), self.address)

    async def _serve(self, server: grpc.aio.Server) -> None:
        for served in self._served.values():
            guards = functools.partial(
                self._guards, spec=served.spec, rules=self.rules(served.spec.service)
            )
            for recorder in served.recorders:
                recorder.install(server, guards)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        address = f"{self.host}:{self.port}"
        try:
            if self._tls is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, self._tls.server_credentials())
        except RuntimeError:  # grpcio raises where older versions returned 0
            bound = 0
        if bound == 0:
            raise ConfigError(f"port: could not bind {self.host}:{self.port}")
        self.port = bound
        await server.start()
        self._server = server
        for served in self._served.values():
            for name in served.grpc_services():
                await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def _release(self) -> None:
        for subscription in self._subscriptions:
            await subscription.cancel()
        self._subscriptions.clear()
        for rules in self._rules.values():
            await rules.close()
        await self._registry.close()

    def rules(self, service: str) -> ServiceRules:
        """The provider-side rules (limits) of one microservice, watched while serving."""
        found = self._rules.get(service)
        if found is None:
            kinds = (ConcurrencyRule.KIND, RateLimitRule.KIND)
            found = self._rules[service] = ServiceRules(self._registry, self.tenant, service, kinds)
        return found

    def _guards(self, path: str, spec: ProviderSpec, rules: ServiceRules) -> list[Guard]:
        """tracing -> auth -> metrics -> executes -> rate limit, around each handler."""
        guards: list[Guard] = []
        if self._telemetry.tracer is not None:
            guards.append(ServerTracingGuard(self._telemetry.tracer, path, spec.service))
        if self._auth is not None:
            subscribers = (
                self._subscribers_of(spec.service) if self._auth.require_subscription else None
            )
            guards.append(AuthGuard(self._auth, self.tenant, spec.service, subscribers))
        if self._telemetry.instruments is not None:
            guards.append(ServerMetricsGuard(self._telemetry.instruments, path, spec.service))
        guards += [ExecutesGuard(path, spec.executes, rules), RateLimitGuard(path, rules)]
        return guards

    def _subscribers_of(self, service: str) -> Subscribers:
        found = self._subscribers.get(service)
        if found is None:
            found = self._subscribers[service] = Subscribers()
            assert isinstance(self._registry, ZooKeeperRegistry)
            watch = self._registry.subscribe_subscribers(self.tenant, service, found.update)
            self._subscriptions.append(watch)
        return found

    def _registration(self, served: _Served) -> Registration:
        spec = served.spec
        instance = Instance(
            host=self.advertise_host,
            port=self.port,
            weight=spec.weight,
            version=spec.version,
            group=spec.group,
            tags=spec.tags,
            services=served.grpc_services(),
            pid=os.getpid(),
            start_time=time.time(),
            warmup=spec.warmup,
            tls=self._tls is not None,
        )
        return Registration(ServiceKey(self.tenant, spec.service, self.cluster), instance)

    async def _register_all(self) -> None:
        try:
            async with asyncio.timeout(REGISTER_WAIT):
                for registration in self._registrations:
                    await self._registry.register(registration)
        except TimeoutError:
            logger.warning(
                "registry unreachable: serving on %s unregistered; will register on reconnect",
                self.address,
            )

    def _install_signal_handlers(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
            self._signals.append(signum)

    def _on_signal(self, signum: signal.Signals) -> None:
        logger.info("received %s: stopping gracefully", signal.Signals(signum).name)
        self._begin_stop()

    def _begin_stop(self) -> asyncio.Task[None]:
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop())
        return self._stopping

    async def stop(self) -> None:
        """Deregister, wait for consumers to notice, NOT_SERVING, drain, stop. Idempotent."""
        await self._begin_stop()

    async def _stop(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
        try:
            for registration in self._registrations:
                try:
                    await asyncio.wait_for(self._registry.deregister(registration), self.grace)
                except Exception as exc:  # the session's end removes the node anyway
                    logger.warning("deregistering %s failed: %r", registration.path, exc)
            if self._server is not None and self.deregister_wait:
                # Consumers keep sending until their watch fires; serve them meanwhile.
                await asyncio.sleep(self.deregister_wait)
            await self._health.enter_graceful_shutdown()
            if self._server is not None:
                await self._server.stop(self.grace)
            await self._release()
        finally:
            self._closed.set()

    async def wait_closed(self) -> None:
        """Return once the server has stopped (after stop() or a signal)."""
        await self._closed.wait()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.stop()
