"""Behind providers that check callers: the gateway calls as its own subscribed app, and
the HTTP caller's app reaches the handler only because the provider trusts that gateway."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import httpx

import csf
from csf.testing.zookeeper import LocalZooKeeper
from tests.gateway.conftest import (
    GATEWAY_APP,
    GATEWAY_APP_SECRET,
    deployed,
    start_gateway,
    stop_gateway,
)

ADD_ITEMS = "/SHOP/shop.Shop/AddItems"


async def _origin_seen(
    zookeeper: LocalZooKeeper, tenant: str, shop: ModuleType, tmp: Path, auth: csf.CallerAuth
) -> httpx.Response:
    async with deployed(zookeeper, tenant, shop, auth):
        gateway = await start_gateway(zookeeper, tenant, tmp)
        try:
            async with httpx.AsyncClient(timeout=20) as client:
                return await gateway.request(client, "POST", ADD_ITEMS, b'{"id": "2"}')
        finally:
            await stop_gateway(gateway)


async def test_a_provider_trusting_the_gateway_sees_the_http_caller_s_app(
    zookeeper: LocalZooKeeper, tenant: str, shop: ModuleType, tmp_path: Path
) -> None:
    auth = csf.CallerAuth(secrets={GATEWAY_APP: GATEWAY_APP_SECRET}, gateways={GATEWAY_APP})
    reply = await _origin_seen(zookeeper, tenant, shop, tmp_path, auth)
    assert reply.status_code == 200, reply.text
    assert reply.json()["originApp"] == "web"


async def test_a_provider_not_trusting_it_as_a_gateway_drops_the_origin(
    zookeeper: LocalZooKeeper, tenant: str, shop: ModuleType, tmp_path: Path
) -> None:
    auth = csf.CallerAuth(secrets={GATEWAY_APP: GATEWAY_APP_SECRET})
    reply = await _origin_seen(zookeeper, tenant, shop, tmp_path, auth)
    assert reply.status_code == 200, reply.text
    assert reply.json()["originApp"] == ""


async def test_a_provider_not_knowing_the_gateway_s_app_refuses_its_calls(
    zookeeper: LocalZooKeeper, tenant: str, shop: ModuleType, tmp_path: Path
) -> None:
    auth = csf.CallerAuth(secrets={"someone-else": "another-secret-0123456789"})
    reply = await _origin_seen(zookeeper, tenant, shop, tmp_path, auth)
    assert reply.status_code == 401
    answer = reply.json()
    assert (answer["code"], answer["message"]) == (
        "UNAUTHENTICATED",
        "the service refused the caller's credentials",
    )
    assert len(answer["trace_id"]) == 32, "a trace id to find the access-log line by"
