"""The HTTP caller's app, sent by a gateway in `csf-origin-app`: a handler sees it through
`csf.origin_app` when the authenticated caller is a gateway the provider trusts, and
never when another caller sends it, so it cannot be forged."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.auth import ORIGIN_APP_KEY
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import greeter_server, wait_until
from tests.security.servicers import raw_call

GATEWAY_SECRET = "csf-gateway-secret-0123456789"
ORDER_SECRET = "order-web-secret-0123456789"
AUTH = csf.CallerAuth(
    secrets={"csf-gateway": GATEWAY_SECRET, "order-web": ORDER_SECRET},
    gateways={"csf-gateway"},
)


@csf.provider(service="XIESR", version="1.0.0", warmup=0)
class OriginGreeter(Greeter):
    """Answers with what `csf.origin_app` says inside the handler."""

    async def SayHello(self, request: Any, context: Any) -> Any:
        return greeter_pb2.HelloReply(message=repr(csf.origin_app(context)))

    async def StreamHellos(self, request: Any, context: Any) -> AsyncIterator[Any]:
        yield greeter_pb2.HelloReply(message=repr(csf.origin_app(context)))


async def origin_seen(
    registry: str, tenant: str, work: Path, app: str, secret: str | None, origin: str | None
) -> tuple[str, str]:
    """What the handler saw, on a unary and a streaming call by `app` sending `origin`."""
    consumer = csf.Consumer(
        registry=registry, tenant=tenant, app=app, snapshot_dir=work / app, app_secret=secret
    )
    metadata = () if origin is None else ((ORIGIN_APP_KEY, origin),)
    async with consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        request = greeter_pb2.HelloRequest(name="x")
        unary = await stub.SayHello(request, metadata=metadata)
        (streamed,) = [reply async for reply in stub.StreamHellos(request, metadata=metadata)]
    return unary.message, streamed.message


async def subscribed(kazoo: KazooClient, tenant: str, *apps: str) -> None:
    for app in apps:
        path = f"/busidomain/csf/{tenant}/XIESR/subscriptions/{app}"
        await asyncio.to_thread(kazoo.create, path, b"", makepath=True)


async def test_a_trusted_gateway_passes_the_origin_app_and_no_other_caller_can(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    await subscribed(kazoo, tenant, "csf-gateway", "order-web")
    async with greeter_server(zookeeper.url, tenant, OriginGreeter, auth=AUTH):

        async def seen(app: str, secret: str, origin: str | None) -> tuple[str, str]:
            return await origin_seen(zookeeper.url, tenant, tmp_path, app, secret, origin)

        await wait_until(lambda: _served(seen), 10, "the provider to load its subscriptions")
        assert await seen("csf-gateway", GATEWAY_SECRET, "web") == ("'web'", "'web'")
        assert await seen("csf-gateway", GATEWAY_SECRET, None) == ("None", "None")
        # A malformed origin is no app name: dropped, not passed on.
        assert await seen("csf-gateway", GATEWAY_SECRET, "../web") == ("None", "None")
        assert await seen("csf-gateway", GATEWAY_SECRET, "w" * 129) == ("None", "None")
        # Another subscribed, authenticated app cannot claim to speak for an HTTP caller.
        assert await seen("order-web", ORDER_SECRET, "web") == ("None", "None")


async def _served(seen: Any) -> bool:
    try:
        await seen("order-web", ORDER_SECRET, None)
    except grpc.aio.AioRpcError as error:
        return error.code() is not grpc.StatusCode.UNAVAILABLE
    return True


async def test_a_caller_claiming_a_gateways_app_without_its_token_never_reaches_the_handler(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    await subscribed(kazoo, tenant, "csf-gateway")
    async with greeter_server(zookeeper.url, tenant, OriginGreeter, auth=AUTH) as server:
        forged = (("csf-app", "csf-gateway"), (ORIGIN_APP_KEY, "web"))
        assert (
            await raw_call(grpc.aio.insecure_channel(server.address), forged)
            is grpc.StatusCode.UNAUTHENTICATED
        )


async def test_without_caller_auth_the_origin_app_passes_as_sent(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with greeter_server(zookeeper.url, tenant, OriginGreeter):
        seen = await origin_seen(zookeeper.url, tenant, tmp_path, "order-web", None, "web")
        assert seen == ("'web'", "'web'")
        none = await origin_seen(zookeeper.url, tenant, tmp_path, "order-web", None, None)
        assert none == ("None", "None")


def test_gateways_must_be_app_names_with_a_secret() -> None:
    secrets = {"csf-gateway": GATEWAY_SECRET}
    with pytest.raises(csf.ConfigError, match=r"auth\.gateways: 'other' has no secret"):
        csf.CallerAuth(secrets=secrets, gateways={"other"})
    with pytest.raises(csf.ConfigError, match=r"auth\.gateways app: '\.\./x' is not a valid"):
        csf.CallerAuth(secrets=secrets, gateways={"../x"})
    with pytest.raises(csf.ConfigError, match=r"auth\.gateways: expected a set of app names"):
        csf.CallerAuth(secrets=secrets, gateways="csf-gateway")  # type: ignore[arg-type]
    with pytest.raises(csf.ConfigError, match=r"auth\.gateways: expected a set of app names"):
        csf.CallerAuth(secrets=secrets, gateways=["csf-gateway"])  # type: ignore[arg-type]
    auth = csf.CallerAuth(secrets=secrets, gateways={"csf-gateway"})
    assert auth.gateways == frozenset({"csf-gateway"})
    assert csf.CallerAuth(secrets=secrets).gateways == frozenset()
    assert "gateways=['csf-gateway']" in repr(auth)
