"""gRPC server reflection on a provider, opt-in: a real reflection client (what grpcurl
asks) sees the served services and the same descriptors `csf-registry export` stores."""

import subprocess
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import csf
from csf.registry.descriptors import describe
from demo.providers import Greeter
from tests.conftest import greeter_server

# No registry needed: a static:// registry registers nothing.
REGISTRY = "static://127.0.0.1:1"


async def ask(
    address: str, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """The reflection service's answers to `requests`, asked on one stream."""

    async def sent() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        for request in requests:
            yield request

    async with grpc.aio.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        return [answer async for answer in stub.ServerReflectionInfo(sent(), timeout=5)]


async def test_reflection_lists_the_served_services_and_serves_their_descriptors() -> None:
    async with greeter_server(REGISTRY, "T", reflection=True) as server:
        listed, found = await ask(
            server.address,
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="demo.Greeter"),
        )
    services = {service.name for service in listed.list_services_response.service}
    assert services == {
        "demo.Greeter",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(data)
        for data in found.file_descriptor_response.file_descriptor_proto
    ]
    greeter = next(
        service
        for file in files
        if file.package == "demo"
        for service in file.service
        if service.name == "Greeter"
    )
    kinds = {(False, False): "unary_unary", (False, True): "unary_stream"}
    kinds |= {(True, False): "stream_unary", (True, True): "stream_stream"}
    served = sorted(
        (
            method.name,
            kinds[method.client_streaming, method.server_streaming],
            method.input_type.lstrip("."),
            method.output_type.lstrip("."),
        )
        for method in greeter.method
    )
    (described,) = describe(Greeter)
    assert described.grpc_service == "demo.Greeter"
    exported = sorted(
        (method["name"], method["kind"], method["input"], method["output"])
        for method in described.methods
    )
    assert served == exported
    assert len(served) == 4


async def test_without_reflection_the_reflection_call_is_unimplemented() -> None:
    async with greeter_server(REGISTRY, "T") as server:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ask(server.address, reflection_pb2.ServerReflectionRequest(list_services=""))
    assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_reflection_without_grpcio_reflection_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "grpc_reflection.v1alpha", None)
    with pytest.raises(csf.ConfigError, match=r"pip install 'csf\[reflection\]'"):
        csf.Server(registry=REGISTRY, tenant="T", reflection=True)


def test_a_server_without_reflection_never_imports_grpcio_reflection() -> None:
    # grpc itself imports the empty top-level package; the servicer's is the real import.
    code = (
        "import sys, csf\n"
        "csf.Server(registry='static://127.0.0.1:1', tenant='T')\n"
        "assert 'grpc_reflection.v1alpha' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
