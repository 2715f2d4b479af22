"""A gateway whose ZooKeeper goes away keeps serving from its last good view, and says so."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import httpx

from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until
from tests.gateway.conftest import deployed, start_gateway, stop_gateway

GET_ITEM = "/SHOP/shop.Shop/GetItem"


async def test_calls_go_on_while_zookeeper_is_away(
    own_zookeeper: LocalZooKeeper, tenant: str, shop: ModuleType, tmp_path: Path
) -> None:
    async with deployed(own_zookeeper, tenant, shop):
        gateway = await start_gateway(own_zookeeper, tenant, tmp_path)
        try:
            async with httpx.AsyncClient(timeout=20) as client:
                assert (await gateway.request(client, "POST", GET_ITEM, b"{}")).is_success
                own_zookeeper.stop()

                async def away() -> bool:
                    health = await client.get(gateway.url + "/healthz")
                    return health.status_code == 200 and "away" in health.json()["registry"]

                await wait_until(away, within=30, what="healthz telling ZooKeeper is away")
                for n in range(5):
                    body = f'{{"id": "{n}"}}'.encode()
                    reply = await gateway.request(client, "POST", GET_ITEM, body)
                    assert reply.status_code == 200, reply.text
                own_zookeeper.start()

                async def live() -> bool:
                    health = await client.get(gateway.url + "/healthz")
                    return health.json()["registry"] == "live"

                await wait_until(live, within=30, what="healthz live again")
        finally:
            await stop_gateway(gateway)
