"""What a real csf-gateway refuses, with which status, and that no refused request reaches
a handler; in DESIGN's order of checks."""

from __future__ import annotations

import json
import time
from types import ModuleType

import httpx
import pytest

from csf.registry.admin import RegistryAdmin
from tests.conftest import wait_until
from tests.gateway.conftest import Deployment, GatewayProcess

GET_ITEM = "/SHOP/shop.Shop/GetItem"
BODY = b'{"id": "1"}'


def _error(reply: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == code and set(body) == {"code", "message", "trace_id"}, body
    return body  # type: ignore[no-any-return]


async def test_unsigned_badly_signed_stale_and_replayed_requests_never_reach_a_handler(
    gateway: GatewayProcess, client: httpx.AsyncClient, shop: ModuleType
) -> None:
    before = shop.Shop.calls
    url = gateway.url + GET_ITEM
    unsigned = await client.post(url, content=BODY)
    assert "X-Csf-App" in _error(unsigned, 401, "UNAUTHENTICATED")["message"]
    no_signature = gateway.signed("POST", GET_ITEM, BODY)
    del no_signature["X-Csf-Signature"]
    _error(await client.post(url, content=BODY, headers=no_signature), 401, "UNAUTHENTICATED")
    wrong_secret = gateway.signed("POST", GET_ITEM, BODY, secret="not-the-secret-of-web")
    _error(await client.post(url, content=BODY, headers=wrong_secret), 401, "UNAUTHENTICATED")
    stale = str(int((time.time() - 6 * 60) * 1000))
    headers = gateway.signed("POST", GET_ITEM, BODY, timestamp=stale)
    _error(await client.post(url, content=BODY, headers=headers), 401, "UNAUTHENTICATED")
    tampered = gateway.signed("POST", GET_ITEM, BODY)
    reply = await client.post(url, content=b'{"id": "2"}', headers=tampered)
    _error(reply, 401, "UNAUTHENTICATED")
    assert shop.Shop.calls == before, "a refused caller reached the handler"

    once = gateway.signed("POST", GET_ITEM, BODY)
    assert (await client.post(url, content=BODY, headers=once)).status_code == 200
    replayed = await client.post(url, content=BODY, headers=once)
    assert "nonce" in _error(replayed, 401, "UNAUTHENTICATED")["message"]
    assert shop.Shop.calls == before + 1


async def test_an_app_not_subscribed_is_refused_with_403(
    gateway: GatewayProcess, client: httpx.AsyncClient, shop: ModuleType
) -> None:
    before = shop.Shop.calls
    reply = await gateway.request(client, "POST", GET_ITEM, BODY, app="partner")
    _error(reply, 403, "PERMISSION_DENIED")
    assert shop.Shop.calls == before


async def test_unknown_routes_are_404_and_a_body_over_the_limit_413(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    for path in ("/SHOP/shop.Shop/Nope", "/NOPE/shop.Shop/GetItem", "/SHOP/v1/other", "/x"):
        _error(await gateway.request(client, "POST", path, BODY), 404, "NOT_FOUND")
    _error(await gateway.request(client, "GET", GET_ITEM), 405, "UNIMPLEMENTED")
    huge = b'{"displayName": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    reply = await client.post(gateway.url + "/SHOP/shop.Shop/PutItem", content=huge)
    _error(reply, 413, "INVALID_ARGUMENT")
    unsigned_unknown = await client.get(gateway.url + "/nothing/here")
    _error(unsigned_unknown, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"id": "1", "nmae": "x"}', "nmae"),
        (b'{"id": "one"}', "id"),
        (b"[1, 2]", "GetItemRequest"),
        (b'{"id": 1}' * 2, "invalid JSON"),
        (b'{"id": "1", "loud": "maybe"}', "loud"),
        (b"[" * 100_000, "invalid JSON"),
    ],
)
async def test_a_bad_body_is_a_400_naming_what_is_wrong(
    gateway: GatewayProcess, client: httpx.AsyncClient, body: bytes, names: str
) -> None:
    reply = await gateway.request(client, "POST", GET_ITEM, body)
    assert names in _error(reply, 400, "INVALID_ARGUMENT")["message"]


async def test_a_bad_timeout_header_is_a_400(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    for value in ("soon", "-1", "0", "nan", "inf"):
        reply = await gateway.request(
            client, "POST", GET_ITEM, BODY, headers={"X-Csf-Timeout": value}
        )
        _error(reply, 400, "INVALID_ARGUMENT")


async def test_services_open_and_close_live_without_a_restart(
    deployment: Deployment,
    gateway: GatewayProcess,
    client: httpx.AsyncClient,
    figures: list[str],
) -> None:
    async def served(expected: int) -> bool:
        reply = await gateway.request(client, "POST", GET_ITEM, BODY)
        return reply.status_code == expected

    for action, expected in (("close", 404), ("open", 200)):

        def transition(admin: RegistryAdmin, action: str = action) -> None:
            admin.transition("SHOP", action)

        await deployment.run(transition)
        changed_at = time.monotonic()
        await wait_until(lambda e=expected: served(e), within=5, what=f"SHOP after {action}")
        figures.append(
            f"gateway: '{action}' applied after {(time.monotonic() - changed_at) * 1000:.0f} ms"
        )


async def test_healthz_says_what_is_served(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    reply = await client.get(gateway.url + "/healthz")
    assert reply.status_code == 200
    assert json.loads(reply.text)["open_services"] == ["SHOP"]
