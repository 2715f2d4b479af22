"""Every call kind through a real csf-gateway process to a real provider, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from types import ModuleType

import httpx

from tests.conftest import wait_until
from tests.gateway.conftest import GatewayProcess

GET_ITEM = "/SHOP/shop.Shop/GetItem"


async def test_a_unary_call_answers_proto3_json_with_every_field(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    reply = await gateway.request(client, "POST", GET_ITEM, b'{"id": "7"}')
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {
        "id": "7",
        "displayName": "item 7",
        "color": "RED",
        "count": 0,
        "inStock": False,
        "tags": [],
    }


async def test_a_64_bit_integer_makes_the_round_trip_as_a_string(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    biggest = 2**63 - 1
    body = json.dumps({"id": str(biggest), "display_name": "x", "color": "BLUE"}).encode()
    reply = await gateway.request(client, "POST", "/SHOP/shop.Shop/PutItem", body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["id"] == str(biggest)
    assert reply.json()["displayName"] == "x", "original field names are accepted too"
    assert reply.json()["color"] == "BLUE"
    as_number = await gateway.request(
        client, "POST", "/SHOP/shop.Shop/PutItem", b'{"id": -9223372036854775808}'
    )
    assert as_number.json()["id"] == "-9223372036854775808"


async def test_annotated_routes_bind_path_and_body(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    reply = await gateway.request(client, "GET", "/SHOP/v1/items/42?loud=true")
    assert reply.status_code == 200, reply.text
    assert reply.json()["id"] == "42"
    looked_up = await gateway.request(client, "POST", "/SHOP/v1/items:lookup", b'{"id": "5"}')
    assert looked_up.json()["id"] == "5"
    put = await gateway.request(
        client, "PUT", "/SHOP/v1/items/9", b'{"displayName": "nine", "tags": ["a", "b"]}'
    )
    assert put.json()["id"] == "9" and put.json()["tags"] == ["a", "b"]
    wrong_verb = await gateway.request(client, "DELETE", "/SHOP/v1/items/42")
    assert wrong_verb.status_code == 405
    assert wrong_verb.json()["code"] == "UNIMPLEMENTED"


async def test_a_server_stream_is_ndjson_one_result_per_line(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    reply = await gateway.request(client, "POST", "/SHOP/shop.Shop/ListItems", b'{"count": 3}')
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    lines = reply.text.splitlines()
    assert [json.loads(line)["result"]["id"] for line in lines] == ["0", "1", "2"]
    assert all(" " not in line for line in lines), "each line is compact JSON"


async def test_a_server_stream_failing_midway_ends_with_an_error_line(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    body = b'{"count": 5, "failAfter": 2}'
    reply = await gateway.request(client, "POST", "/SHOP/shop.Shop/ListItems", body)
    assert reply.status_code == 200
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [line["result"]["id"] for line in lines[:-1]] == ["0", "1"]
    assert lines[-1] == {"error": {"code": "ABORTED", "message": "the call was aborted"}}


async def test_a_server_stream_as_server_sent_events(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    path = "/SHOP/shop.Shop/ListItems"
    body = b'{"count": 2}'
    headers = gateway.signed("POST", path, body, headers={"Accept": "text/event-stream"})
    events = []
    async with client.stream("POST", gateway.url + path, content=body, headers=headers) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        async for line in reply.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    assert [event["id"] for event in events] == ["0", "1"]


async def test_a_client_stream_reads_an_ndjson_body(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    body = b'{"id": "1"}\n{"id": "2"}\n\n{"id": "40"}\n'
    reply = await gateway.request(client, "POST", "/SHOP/shop.Shop/AddItems", body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["sum"] == "43" and reply.json()["items"] == 3
    assert reply.json()["originApp"] == "web", "the caller's app travels to the provider"


async def test_bidi_is_not_offered_over_http(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    reply = await gateway.request(client, "POST", "/SHOP/shop.Shop/Chat", b'{"id": "1"}')
    assert reply.status_code == 501
    assert reply.json()["code"] == "UNIMPLEMENTED"


async def test_each_event_is_flushed_as_it_comes_and_leaving_cancels_the_stream(
    gateway: GatewayProcess, client: httpx.AsyncClient, shop: ModuleType
) -> None:
    """The provider holds its second item until the first has reached the HTTP caller:
    a gateway that buffered would never deliver it. Hanging up cancels the provider's
    stream."""
    shop.Shop.gate = asyncio.Event()
    cancelled = shop.Shop.cancelled
    path, body = "/SHOP/shop.Shop/ListItems", b'{"count": 1000, "gated": true, "delayMs": 10}'
    headers = gateway.signed("POST", path, body, headers={"Accept": "text/event-stream"})
    async with client.stream("POST", gateway.url + path, content=body, headers=headers) as reply:
        lines = reply.aiter_lines()
        first = await asyncio.wait_for(anext(lines), 10)
        assert json.loads(first.removeprefix("data: "))["id"] == "0"
        shop.Shop.gate.set()
        seen = [line async for line in _take(lines, 20)]
        assert len([line for line in seen if line.startswith("data: ")]) >= 5
    await wait_until(lambda: shop.Shop.cancelled > cancelled, within=10, what="stream cancelled")


async def _take(lines: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    for _ in range(count):
        yield await asyncio.wait_for(anext(lines), 10)


async def test_hanging_up_before_the_first_message_cancels_the_stream(
    gateway: GatewayProcess, shop: ModuleType
) -> None:
    cancelled = shop.Shop.cancelled
    path, body = "/SHOP/shop.Shop/ListItems", b'{"count": 1000, "delayMs": 300}'
    headers = gateway.signed("POST", path, body)
    async with httpx.AsyncClient(timeout=0.1) as impatient:
        with contextlib.suppress(httpx.TimeoutException):
            await impatient.post(gateway.url + path, content=body, headers=headers)
    await wait_until(lambda: shop.Shop.cancelled > cancelled, within=10, what="stream cancelled")
