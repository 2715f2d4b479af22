"""Consumer: one application's client side, handing out typed stubs over governed channels."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypedDict, TypeVar, Unpack

import grpc

from csf._chain import DEFAULT_CONSUMER_CHAIN, FilterFactory, resolve_chain
from csf._exceptions import ConfigError
from csf._invocation import MethodState
from csf.auth import CallerToken
from csf.channel import GovernedChannel
from csf.config import (
    DEFAULT_CLUSTER,
    DEFAULT_STARTUP_WAIT,
    HashKey,
    MethodConfig,
    StubConfig,
    check_name,
    check_timeout,
)
from csf.directory import Directory
from csf.lifecycle import ServiceLifecycle
from csf.observability import Observability
from csf.registry import Registry, ServiceKey, open_registry
from csf.registry.snapshot import SnapshotStore, default_snapshot_dir
from csf.rule_set import ServiceRules
from csf.set_rule import SetName
from csf.tls import TLSConfig

StubT = TypeVar("StubT")


class StubOptions(TypedDict, total=False):
    """The options of `Consumer.stub()` and `Consumer.channel()`; defaults in StubConfig."""

    cluster: str
    lb: str
    timeout: float
    retries: int
    fallback: Mapping[str, Any] | object | None
    hash_key: HashKey | None
    methods: Mapping[str, MethodConfig]
    group: str | None
    version: str | None
    tags: Mapping[str, str]
    set_key: HashKey | None


class Consumer:
    """The client side of one application (`app`) in one tenant.

    Use it as an async context manager; `stub()` returns generated gRPC stubs whose
    calls are load balanced over the providers the registry lists. `set` names the
    SET (cell) the application lives in: a SET-ized service's calls without a key go
    there. `registry` is a `zk://` or `static://` URL, or a `csf.registry.Registry` that
    its owner starts and closes (one ZooKeeper session shared by several consumers and
    servers, say). Raises `ConfigError` at construction for a bad registry, name or setting.
    """

    ROLE: ClassVar[str] = "consumer"
    """What the nodes telling which rules it applied call it (csf.registry.applied)."""

    def __init__(
        self,
        registry: str | Registry,
        tenant: str,
        app: str,
        *,
        snapshot_dir: str | os.PathLike[str] | None = None,
        chain: Sequence[str] = DEFAULT_CONSUMER_CHAIN,
        filters: Mapping[str, FilterFactory] | None = None,
        startup_wait: float = DEFAULT_STARTUP_WAIT,
        observability: Observability | None = None,
        tls: TLSConfig | None = None,
        app_secret: str | None = None,
        set: str | None = None,  # DESIGN section 8 names it so; no builtin set() below
    ) -> None:
        self.tenant = check_name("tenant", tenant)
        self.app = check_name("app", app)
        self.set_name = None if set is None else str(SetName.parse("set", set))
        if tls is not None and not isinstance(tls, TLSConfig):
            raise ConfigError(f"tls: expected csf.TLSConfig or None, got {tls!r}")
        if app_secret is not None and (not isinstance(app_secret, str) or len(app_secret) < 16):
            raise ConfigError("app_secret: expected a string of 16+ characters")
        self._tls = tls
        self._app_secret = app_secret
        self._startup_wait = check_timeout("startup_wait", startup_wait)
        self._owns_registry = isinstance(registry, str)
        self._registry = self._open_registry(registry)
        self._filters = resolve_chain(chain, filters)
        self._telemetry = (observability or Observability()).resolve(self.app)
        self._unwatch_gauge: Callable[[], None] | None = None
        if self._telemetry.instruments is not None:
            # A registry it shares counts in the first owner's meter that asks.
            self._registry.rejections.count_with(self._telemetry.instruments.registry_rejected)
            self._unwatch_gauge = self._telemetry.instruments.watch(
                "providers", self._provider_counts
            )
        self._snapshots = SnapshotStore(
            Path(snapshot_dir) if snapshot_dir is not None else default_snapshot_dir()
        )
        self._directories: dict[tuple[str, str], Directory] = {}
        self._rules: dict[str, ServiceRules] = {}
        self._states: dict[tuple[str, str, str], MethodState] = {}
        self._lifecycles: dict[tuple[str, str], ServiceLifecycle] = {}
        self._started = False

    def _open_registry(self, registry: str | Registry) -> Registry:
        if isinstance(registry, str):
            return open_registry(registry, startup_wait=self._startup_wait)
        if not isinstance(registry, Registry):
            raise ConfigError(
                "registry: expected a zk:// or static:// URL or a csf.registry.Registry, "
                f"got {registry!r}"
            )
        return registry

    async def start(self) -> None:
        if self._owns_registry:
            await self._registry.start()
        self._started = True

    async def close(self) -> None:
        """Close every provider channel, and the registry session unless it was given."""
        if self._unwatch_gauge is not None:
            self._unwatch_gauge()
            self._unwatch_gauge = None
        for state in self._states.values():
            state.close()
        self._states.clear()
        for lifecycle in self._lifecycles.values():
            await lifecycle.close()
        self._lifecycles.clear()
        for directory in self._directories.values():
            await directory.close()
        self._directories.clear()
        for rules in self._rules.values():
            await rules.close()
        self._rules.clear()
        if self._started:
            self._started = False
            if self._owns_registry:
                await self._registry.close()

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _provider_counts(self) -> list[tuple[float, dict[str, Any]]]:
        return [
            (len(d.endpoints), {"csf.tenant": self.tenant, "csf.service": s, "csf.cluster": c})
            for (s, c), d in self._directories.items()
        ]

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError("Consumer is not started: use `async with Consumer(...)`")

    def rules(self, service: str) -> ServiceRules:
        """The live governance rules of one service, shared by all its stubs."""
        self._check_started()
        found = self._rules.get(check_name("service", service))
        if found is None:
            found = self._rules[service] = ServiceRules(
                self._registry,
                self.tenant,
                service,
                startup_wait=self._startup_wait,
                snapshots=self._snapshots,
                role=self.ROLE,
                app=self.app,
            )
        return found

    def directory(self, service: str, cluster: str = DEFAULT_CLUSTER) -> Directory:
        """The live provider set of one service cluster, shared by all stubs of it."""
        self._check_started()
        key = (check_name("service", service), check_name("cluster", cluster))
        found = self._directories.get(key)
        if found is None:
            found = Directory(
                ServiceKey(self.tenant, service, cluster),
                self._registry,
                self._snapshots,
                self.rules(service),
                self._tls,
            )
            self._directories[key] = found
        return found

    def method_state(self, service: str, cluster: str, method: str) -> MethodState:
        """The governance state of one method (breaker, limits, retry budget), shared by
        every stub of it."""
        key = (service, cluster, method)
        found = self._states.get(key)
        if found is None:
            found = MethodState(service, method, self.rules(service), self._telemetry)
            self._states[key] = found
        return found

    def lifecycle(self, service: str, grpc_service: str) -> ServiceLifecycle:
        """The live lifecycle status of one gRPC service (e.g. 'demo.Greeter') of `service`."""
        self._check_started()
        key = (service, grpc_service)
        found = self._lifecycles.get(key)
        if found is None:
            found = ServiceLifecycle(self._registry, self.tenant, service, grpc_service)
            self._lifecycles[key] = found
        return found

    def channel(self, *, service: str, **options: Unpack[StubOptions]) -> GovernedChannel:
        """The GovernedChannel `stub()` wraps, for callers without generated stubs; its
        multicallables take serializers per call path. Same options as `stub()`."""
        config = StubConfig(service=service, **options)
        caller = None
        if self._app_secret is not None:
            caller = CallerToken(self.app, self._app_secret, self.tenant, service)
        return GovernedChannel(
            config,
            lambda name: self.directory(service, name),
            lambda method, name: self.method_state(service, name, method),
            lambda grpc_service: self.lifecycle(service, grpc_service),
            self._filters,
            self._telemetry,
            caller,
            self.set_name,
        )

    def stub(
        self,
        stub_cls: Callable[[grpc.aio.Channel], StubT],
        *,
        service: str,
        **options: Unpack[StubOptions],
    ) -> StubT:
        """`stub_cls(channel)` over a GovernedChannel for `service`; typed as `stub_cls` is.

        `timeout` is each call's deadline in seconds unless the call passes its own
        (default 5); `retries` (default 2) applies to idempotent methods; `methods`
        overrides settings per method name; `lb` names the balancer (default
        round_robin); `hash_key(request)` gives consistent hashing its key; `fallback`
        answers for failed calls; `group`, `version` and `tags` admit only the providers
        that match. `set_key(request)` gives a SET-ized service's calls their SET key
        when it is not the `hash_key`. Raises ConfigError for a bad value, or for a method named in
        `methods` or `fallback` that the stub does not have.
        """
        self._check_started()
        channel = self.channel(service=service, **options)
        try:
            stub = stub_cls(channel)
        except TypeError as exc:
            raise ConfigError(
                f"stub_cls: {stub_cls!r} is not a generated gRPC stub: {exc}"
            ) from exc
        channel.check_methods()
        return stub
