"""Errors say why: NoProviderError names its reason (not registered, none matching the
stub's selection, registry unreachable, service offline), and settings naming a method
the stub does not have are refused when the stub is made."""

from pathlib import Path
from typing import Any

import grpc
import pytest

import csf
from csf.testing.zookeeper import LocalZooKeeper, free_port
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_variant, serving, wait_until
from tests.registry.test_lifecycle_watch import Operator
from tests.test_streams_governed import KINDS, make_call, outcome

Request = greeter_pb2.HelloRequest


async def refusal(stub: Any, kind: str = "unary") -> csf.NoProviderError:
    error = await outcome(make_call(stub, kind))
    assert isinstance(error, csf.NoProviderError), error
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    return error


async def test_no_provider_says_the_service_has_none_registered(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with consumer_for(zookeeper.url, tenant, tmp_path) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="NOSUCH", timeout=2)
        error = await refusal(stub)
        assert error.details() == f"no provider of {tenant}/NOSUCH/defaultCluster is registered"


async def test_no_provider_says_none_of_the_live_providers_matches_the_stub(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    providers = [greeter_variant() for _ in range(3)]
    async with (
        serving(zookeeper.url, tenant, *providers),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        anyone = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        await wait_until(lambda: len(consumer.directory("XIESR").endpoints) == 3, 10, "3 up")
        assert await make_call(anyone, "unary") == "hi x"
        nosuch = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2, group="nosuch"
        )
        for kind in ("unary", "server_stream"):
            error = await refusal(nosuch, kind)
            assert error.details() == (
                f"none of the 3 providers of {tenant}/XIESR/defaultCluster matches group='nosuch'"
            )


async def test_no_provider_says_the_registry_cannot_be_reached(tenant: str, tmp_path: Path) -> None:
    nobody = f"zk://127.0.0.1:{free_port()}?session_timeout=2"
    async with csf.Consumer(
        registry=nobody, tenant=tenant, app="test", snapshot_dir=tmp_path, startup_wait=0.2
    ) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=1)
        error = await refusal(stub)
        assert error.details() == (
            f"no provider list for {tenant}/XIESR/defaultCluster: "
            "the registry cannot be reached and there is no snapshot"
        )


async def test_an_offline_service_takes_no_calls_until_it_is_online_again(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    operator = Operator(zookeeper, tenant)
    await operator.import_descriptors()
    await operator.transition("online")
    async with (
        serving(zookeeper.url, tenant, greeter_variant()),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        for kind in KINDS:
            assert await make_call(stub, kind)
        lifecycle = consumer.lifecycle("XIESR", "demo.Greeter")
        await operator.transition("offline")
        await wait_until(lambda: lifecycle.status == "offline", 10, "offline heard")
        for kind in KINDS:
            error = await refusal(stub, kind)
            assert error.details() == (
                f"{tenant}/XIESR demo.Greeter is offline: "
                "it takes no calls until it is online again"
            )
        await operator.transition("online")
        await wait_until(lambda: lifecycle.status == "online", 10, "online heard")
        for kind in KINDS:
            assert await make_call(stub, kind)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (
            {"methods": {"SayHelo": csf.MethodConfig(timeout=1)}},
            "methods: unknown method 'SayHelo'",
        ),
        ({"fallback": {"SayHelo": lambda r, e: None}}, "fallback: unknown method 'SayHelo'"),
        ({"fallback": {"Chat": lambda r, e: None}}, "fallback: 'Chat' is a streaming method"),
    ],
)
async def test_settings_for_a_method_the_stub_lacks_are_refused_up_front(
    tenant: str, tmp_path: Path, settings: dict[str, Any], complaint: str
) -> None:
    async with csf.Consumer(
        registry="static://127.0.0.1:1", tenant=tenant, app="test", snapshot_dir=tmp_path
    ) as consumer:
        with pytest.raises(csf.ConfigError, match=complaint):
            consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", **settings)


async def test_a_hash_key_is_per_method_and_a_failing_one_says_which(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, greeter_variant(), greeter_variant()),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        by_name = csf.MethodConfig(hash_key=lambda request: request.name)
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, lb="consistent_hash",
            methods={"SayHello": by_name},
        )  # fmt: skip
        await wait_until(lambda: len(consumer.directory("XIESR").endpoints) == 2, 10, "2 up")
        served = {(await stub.SayHello(Request(name="alice"))).served_by for _ in range(10)}
        assert len(served) == 1, "one key, one provider"
        assert await make_call(stub, "bidi"), "a method without a hash key still works"

        def sku(request: Any) -> str:
            return str(request.sku)  # HelloRequest has no sku: wrong for every method

        wrong = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", hash_key=sku)
        with pytest.raises(csf.ConfigError, match="hash_key failed for SayHello: AttributeError"):
            await wrong.SayHello(Request(name="x"))
