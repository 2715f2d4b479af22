"""The Registry protocol is all a Server needs: nothing in csf/ asks which registry it has."""

import ast
import asyncio
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

import csf
from csf.auth import CallerToken
from csf.config import StaticURL
from csf.registry import (
    DescriptorsListener,
    Instance,
    LifecycleListener,
    ProviderListener,
    Registration,
    Registry,
    Rejections,
    RuleListener,
    ServiceKey,
    StaticRegistry,
    SubscribersListener,
    Subscription,
)
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ROOT, greeter_server, wait_until

CONCRETE = {"ZooKeeperRegistry", "StaticRegistry"}
SECRET = "s" * 16


def test_nothing_in_csf_checks_for_a_concrete_registry() -> None:
    found = []
    for path in sorted((ROOT / "csf").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and CONCRETE & {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


class _Nothing:
    async def cancel(self) -> None:
        pass


class MemoryRegistry:
    """The least a registry can be: instances and subscribers kept in memory, owned
    (started and closed) by the test."""

    holds_subscriptions = True
    connected = True

    def __init__(self, subscribers: frozenset[str]) -> None:
        self.instances: dict[str, Instance] = {}
        self.subscribers = subscribers
        self.closed = False
        self.rejections = Rejections()
        self.applied: dict[str, bytes] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def register(self, registration: Registration) -> None:
        self.instances[registration.path] = registration.instance

    async def deregister(self, registration: Registration) -> None:
        self.instances.pop(registration.path, None)

    def subscribe(self, key: ServiceKey, listener: ProviderListener) -> Subscription:
        instances: Sequence[Instance] = list(self.instances.values())
        asyncio.get_running_loop().call_soon(listener.on_providers, instances)
        return _Nothing()

    def subscribe_rule(
        self, tenant: str, service: str, kind: str, listener: RuleListener
    ) -> Subscription:
        return _Nothing()

    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        path = f"{tenant}/{service}/{kind}/{process}"
        if document is None:
            self.applied.pop(path, None)
        else:
            self.applied[path] = document

    def subscribe_subscribers(
        self, tenant: str, service: str, listener: SubscribersListener
    ) -> Subscription:
        asyncio.get_running_loop().call_soon(listener, self.subscribers)
        return _Nothing()

    def subscribe_lifecycle(
        self, tenant: str, service: str, grpc_service: str, listener: LifecycleListener
    ) -> Subscription:
        asyncio.get_running_loop().call_soon(listener, "open")
        return _Nothing()

    def subscribe_descriptors(self, tenant: str, listener: DescriptorsListener) -> Subscription:
        return _Nothing()


async def test_a_server_registers_and_checks_subscribers_through_a_custom_registry() -> None:
    registry = MemoryRegistry(subscribers=frozenset({"web"}))
    assert isinstance(registry, Registry)
    auth = csf.CallerAuth(secrets={"web": SECRET, "batch": SECRET})
    server = greeter_server(registry, "T", auth=auth)  # type: ignore[arg-type]
    async with server, grpc.aio.insecure_channel(server.address) as channel:
        [path] = registry.instances
        assert registry.instances[path].address == server.address
        stub = greeter_pb2_grpc.GreeterStub(channel)

        async def code_for(app: str) -> grpc.StatusCode:
            metadata = CallerToken(app, SECRET, "T", "XIESR").metadata()
            try:
                await stub.SayHello(greeter_pb2.HelloRequest(), metadata=metadata, timeout=5)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        async def subscribed_app_served() -> bool:
            return await code_for("web") is grpc.StatusCode.OK

        # Until the registry has listed the subscribers, calls are refused UNAVAILABLE.
        await wait_until(subscribed_app_served, 5, "the subscribed app served")
        assert await code_for("batch") is grpc.StatusCode.PERMISSION_DENIED
    assert registry.instances == {}, "deregistered on stop"
    assert not registry.closed, "a registry the server was given is its owner's to close"


def test_a_registry_that_holds_no_subscriptions_cannot_back_subscription_checks() -> None:
    registry = MemoryRegistry(frozenset())
    registry.holds_subscriptions = False  # type: ignore[misc]
    auth = csf.CallerAuth(secrets={"web": SECRET})
    with pytest.raises(csf.ConfigError, match=r"auth\.require_subscription: needs a zk://"):
        csf.Server(registry=registry, tenant="T", auth=auth)  # type: ignore[arg-type]
    unchecked = csf.CallerAuth(secrets={"web": SECRET}, require_subscription=False)
    csf.Server(registry=registry, tenant="T", auth=unchecked)  # type: ignore[arg-type]


def test_a_registry_argument_that_is_neither_a_url_nor_a_registry_is_refused() -> None:
    with pytest.raises(csf.ConfigError, match="registry: expected a zk:// or static:// URL"):
        csf.Server(registry=Path("/tmp"), tenant="T")  # type: ignore[arg-type]


async def test_the_static_registry_has_no_lifecycle_and_no_subscribers() -> None:
    registry = StaticRegistry(StaticURL((("127.0.0.1", 1),)))
    assert not registry.holds_subscriptions
    statuses: list[str | None] = []
    apps: list[frozenset[str]] = []
    registry.subscribe_lifecycle("T", "XIESR", "demo.Greeter", statuses.append)
    registry.subscribe_subscribers("T", "XIESR", apps.append)
    await wait_until(lambda: statuses == [None], 5, "None, once")
    assert apps == []
