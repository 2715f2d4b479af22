"""`Server`: serves `@csf.provider` servicers, registers them, and leaves gracefully.

`Server` runs a `grpc.aio` server with the gRPC health service, and registers one
ephemeral znode per (microservice, group) it serves. Each method's handler runs inside
the provider guard chain (`csf._guards`), built once when the server starts. Stopping
(leaving `async with`, `stop()`, SIGTERM or SIGINT) deregisters first, keeps serving
while consumers notice, turns health to NOT_SERVING, drains in-flight calls and stops;
a call still running when `grace` ends is answered UNAVAILABLE, which consumers retry
where the method allows it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from csf._exceptions import ConfigError
from csf._guards import (
    DEFAULT_PROVIDER_CHAIN,
    GuardContext,
    GuardFactory,
    build_guards,
    resolve_guards,
)
from csf._handlers import Guards
from csf._reflection import reflection_enabler
from csf.auth import CallerAuth, Subscribers
from csf.config import (
    DEFAULT_CLUSTER,
    DEFAULT_DEREGISTER_WAIT,
    DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_STARTUP_WAIT,
    check_count,
    check_name,
    check_timeout,
)
from csf.observability import Observability
from csf.provider import ProviderSpec, _HandlerRecorder, find_add_function, provider_spec
from csf.registry import (
    Instance,
    Registration,
    Registry,
    ServiceKey,
    Subscription,
    open_registry,
)
from csf.rule_set import ServiceRules
from csf.rules import ConcurrencyRule, RateLimitRule
from csf.set_rule import SetName, SetRule
from csf.tls import TLSConfig

logger = logging.getLogger("csf.provider")

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


def _registry(registry: str | Registry) -> Registry:
    if isinstance(registry, str):
        return open_registry(registry, startup_wait=DEFAULT_STARTUP_WAIT)
    if not isinstance(registry, Registry):
        raise ConfigError(
            f"registry: expected a zk:// or static:// URL or a csf.registry.Registry, "
            f"got {registry!r}"
        )
    return registry


def _checked(value: Any, kind: type[T], name: str) -> T | None:
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{name}: expected csf.{kind.__name__} or None, got {value!r}")
    return value


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

    `registry` is a `zk://` or `static://` URL, or a `csf.registry.Registry` that its
    owner starts and closes (shared, say, with a Consumer); `host`/`port` are bound (port
    0: any free one) and advertised unless `advertise_host` is given (required for a
    wildcard host). Stopping waits `deregister_wait` seconds after deregistering and
    gives in-flight calls `grace` seconds. `chain` names the guards run around each
    handler, outermost first; `guards` maps names to factories that replace a built-in
    guard or add one named in `chain`. `set` names the SET (cell) its providers belong
    to, `<name>.<area>.<group>` (DESIGN section 8). With `reflection` the server also
    answers gRPC server reflection (grpcurl and the like) for the gRPC services it
    serves, health and reflection itself; off by default, and it needs the extra
    `pip install 'csf[reflection]'`. Raises ConfigError for a bad value, or for
    `reflection` without grpcio-reflection installed.
    """

    def __init__(
        self,
        registry: str | Registry,
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
        chain: Sequence[str] = DEFAULT_PROVIDER_CHAIN,
        guards: Mapping[str, GuardFactory] | None = None,
        set: str | None = None,  # DESIGN section 8 names it so; no builtin set() below
        reflection: bool = False,
    ) -> None:
        self.tenant = check_name("tenant", tenant)
        self.set_name = None if set is None else str(SetName.parse("set", set))
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
        self._reflection = reflection_enabler() if reflection else None
        observed = observability or Observability()
        self._telemetry = observed.resolve(f"csf-provider {tenant}")
        # Announced in the instance node, for the console's live view to scrape.
        self._metrics_port = observed.prometheus_port
        self._guard_factories = resolve_guards(chain, guards)
        self._owns_registry = isinstance(registry, str)
        self._registry = _registry(registry)
        if self._telemetry.instruments is not None:
            # A registry it shares counts in the first owner's meter that asks.
            self._registry.rejections.count_with(self._telemetry.instruments.registry_rejected)
        self._tls = _checked(tls, TLSConfig, "tls")
        self._auth = _checked(auth, CallerAuth, "auth")
        needs_subscriptions = auth is not None and auth.require_subscription
        if needs_subscriptions and not self._registry.holds_subscriptions:
            raise ConfigError(
                "auth.require_subscription: needs a zk:// registry, or one that holds subscriptions"
            )
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
        if self._owns_registry:
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
            guards = functools.partial(self._guards, served.spec, self.rules(served.spec.service))
            for recorder in served.recorders:
                recorder.install(server, guards)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if self._reflection is not None:
            self._reflection(
                (name for served in self._served.values() for name in served.grpc_services()),
                server,
            )
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
        if self._owns_registry:
            await self._registry.close()

    def rules(self, service: str) -> ServiceRules:
        """The provider-side rules (limits) of one microservice, watched while serving."""
        found = self._rules.get(service)
        if found is None:
            kinds = (ConcurrencyRule.KIND, RateLimitRule.KIND, SetRule.KIND)
            found = self._rules[service] = ServiceRules(
                self._registry, self.tenant, service, kinds, role="provider"
            )
        return found

    def _guards(self, spec: ProviderSpec, rules: ServiceRules, path: str) -> Guards:
        """The guards of one method, outermost first, from the server's chain."""
        context = GuardContext(
            tenant=self.tenant,
            service=spec.service,
            method=path,
            spec=spec,
            rules=rules,
            telemetry=self._telemetry,
            auth=self._auth,
            subscribers=functools.partial(self._subscribers_of, spec.service),
            set_name=self.set_name,
        )
        return Guards(build_guards(context, self._guard_factories), rules)

    def _subscribers_of(self, service: str) -> Subscribers:
        found = self._subscribers.get(service)
        if found is None:
            found = self._subscribers[service] = Subscribers()
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
            set=self.set_name,
            metrics_port=self._metrics_port,
        )
        return Registration(ServiceKey(self.tenant, spec.service, self.cluster), instance)

    async def _register_all(self) -> None:
        """Register every (microservice, group) at once. One refused: the rest are
        cancelled and all deregistered, and its error raised (start() fails whole)."""
        try:
            async with asyncio.timeout(REGISTER_WAIT), asyncio.TaskGroup() as group:
                # Each is kept as wanted state even if the wait runs out.
                for registration in self._registrations:
                    group.create_task(self._registry.register(registration))
        except TimeoutError:
            logger.warning(
                "registry unreachable: serving on %s unregistered; will register on reconnect",
                self.address,
            )
        except BaseExceptionGroup as failed:
            await self._deregister_all()  # none stays wanted; one placed anyway goes
            raise failed.exceptions[0]  # noqa: B904 - its own cause says why

    async def _deregister_all(self) -> None:
        for registration in self._registrations:
            try:
                await asyncio.wait_for(self._registry.deregister(registration), self.grace)
            except Exception as exc:  # the session's end removes the node anyway
                logger.warning("deregistering %s failed: %r", registration.path, exc)

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
            await self._deregister_all()
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
