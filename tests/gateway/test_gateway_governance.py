"""The gateway's answers to failed calls (google/rpc/code.proto's HTTP mapping, no
internals), and the governance behind it: breaker and fallback, per-app rate limits,
deadlines, and traces that continue the caller's."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest

from csf.gateway import Gateway, GatewaySettings
from tests.gateway.conftest import APPS, Deployment, GatewayProcess
from tests.observability.memory import Telemetry, telemetry  # noqa: F401

GET_ITEM = "/SHOP/shop.Shop/GetItem"

# gRPC code -> (HTTP status, whether the provider's message reaches the caller)
MAPPING = {
    "CANCELLED": (499, False),
    "UNKNOWN": (500, False),
    "INVALID_ARGUMENT": (400, True),
    "DEADLINE_EXCEEDED": (504, False),
    "NOT_FOUND": (404, True),
    "ALREADY_EXISTS": (409, True),
    "PERMISSION_DENIED": (403, False),
    "RESOURCE_EXHAUSTED": (429, False),
    "FAILED_PRECONDITION": (400, True),
    "ABORTED": (409, False),
    "OUT_OF_RANGE": (400, True),
    "UNIMPLEMENTED": (501, False),
    "INTERNAL": (500, False),
    "UNAVAILABLE": (503, False),
    "DATA_LOSS": (500, False),
    "UNAUTHENTICATED": (401, False),
}


async def test_every_grpc_status_gets_its_http_status_and_only_safe_details(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    for code, (status, passed) in MAPPING.items():
        body = json.dumps({"id": "3", "failWith": code}).encode()
        reply = await gateway.request(client, "POST", GET_ITEM, body)
        assert reply.status_code == status, (code, reply.text)
        answer = reply.json()
        assert answer["code"] == code
        assert ("asked to fail: 3" in answer["message"]) == passed, (code, answer)


async def test_the_caller_s_timeout_bounds_the_call(
    gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    reply = await gateway.request(
        client,
        "POST",
        "/SHOP/shop.Shop/ListItems",
        b'{"count": 1, "delayMs": 3000}',
        headers={"X-Csf-Timeout": "0.3"},
    )
    assert reply.status_code == 504, reply.text
    assert reply.json()["code"] == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 2.5, "the 3 s handler was not waited for"


async def test_an_app_over_its_rate_limit_gets_429_with_retry_after(
    deployment: Deployment, gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    rule = {"schema": 1, "apps": {"web": {"rate": 0.2, "burst": 2}}}

    def push(admin: Any) -> None:
        admin.set_rule("SHOP", "ratelimit", json.dumps(rule).encode())

    await deployment.run(push)
    statuses: list[int] = []
    deadline = time.monotonic() + 10
    while 429 not in statuses and time.monotonic() < deadline and len(statuses) < 50:
        reply = await gateway.request(client, "POST", GET_ITEM, b'{"id": "1"}')
        statuses.append(reply.status_code)
    assert 429 in statuses, statuses
    assert statuses[-3:] == [200, 200, 429], "the burst of 2 passes, then the limit holds"
    assert reply.headers["Retry-After"] == "5"
    assert reply.json()["code"] == "RESOURCE_EXHAUSTED"


@pytest.fixture
async def in_process(
    deployment: Deployment,
    tmp_path: Path,
    telemetry: Telemetry,  # noqa: F811
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A Gateway object in this process (its ASGI app, through httpx's transport), with
    a fallback for GetItem and in-memory telemetry."""

    async def later(request: Any, error: grpc.aio.AioRpcError) -> Any:
        return _item(request.id)

    settings = GatewaySettings(
        registry=deployment.zookeeper.url, tenant=deployment.tenant, snapshot_dir=str(tmp_path)
    )
    gateway = Gateway(
        settings, APPS, fallback={"SHOP": {"GetItem": later}}, observability=telemetry.config
    )
    await gateway.start()
    transport = httpx.ASGITransport(app=gateway)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            while gateway.catalogue is None or "SHOP" not in gateway.catalogue.open_services:
                await _tick()
            yield gateway, client
    finally:
        await gateway.close()


async def _tick() -> None:
    await asyncio.sleep(0.01)


def _item(item_id: int) -> Any:
    from shop import shop_pb2

    return shop_pb2.Item(id=item_id, display_name="from the fallback")


def _signed(path: str, body: bytes, **headers: str) -> dict[str, str]:
    from csf.gateway import sign

    timestamp, nonce = str(int(time.time() * 1000)), secrets.token_urlsafe(12)
    signature = sign(APPS["web"], "POST", path, timestamp, nonce, body)
    return {
        "X-Csf-App": "web",
        "X-Csf-Timestamp": timestamp,
        "X-Csf-Nonce": nonce,
        "X-Csf-Signature": signature,
        **headers,
    }


async def test_a_breaker_forced_open_is_answered_by_the_fallback_or_503(
    deployment: Deployment,
    in_process: tuple[Gateway, httpx.AsyncClient],
    gateway: GatewayProcess,
    client: httpx.AsyncClient,
    shop: ModuleType,
) -> None:
    _, embedded_client = in_process
    rule = {"schema": 1, "force": "open"}

    def push(admin: Any) -> None:
        admin.set_rule("SHOP", "breaker", json.dumps(rule).encode())

    await deployment.run(push)
    before = shop.Shop.calls
    body = b'{"id": "8"}'

    deadline = time.monotonic() + 5
    while True:
        from_fallback = await embedded_client.post(
            GET_ITEM, content=body, headers=_signed(GET_ITEM, body)
        )
        if "fallback" in from_fallback.text or time.monotonic() > deadline:
            break
        await _tick()
    assert from_fallback.status_code == 200
    assert from_fallback.json()["displayName"] == "from the fallback"
    assert from_fallback.json()["id"] == "8"
    deadline = time.monotonic() + 5
    while True:
        plain = await gateway.request(client, "POST", GET_ITEM, body)
        if plain.status_code == 503 or time.monotonic() > deadline:
            break
    assert plain.status_code == 503 and plain.json()["code"] == "UNAVAILABLE"
    assert plain.json()["message"] == "the service is unavailable", "no breaker internals"
    calls_while_open = shop.Shop.calls
    await gateway.request(client, "POST", GET_ITEM, body)
    assert shop.Shop.calls == calls_while_open, "an open breaker kept the call from the provider"
    assert before <= calls_while_open


async def test_a_request_has_a_server_span_continuing_the_caller_s_trace(
    in_process: tuple[Gateway, httpx.AsyncClient],
    telemetry: Telemetry,  # noqa: F811
) -> None:
    _, client = in_process
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = _signed(GET_ITEM, b'{"id": "4"}', traceparent=f"00-{trace_id}-b7ad6b7169203331-01")
    reply = await client.post(GET_ITEM, content=b'{"id": "4"}', headers=headers)
    assert reply.status_code == 200
    spans = telemetry.finished()
    server = next(span for span in spans if span.name == f"POST {GET_ITEM}")
    assert f"{server.context.trace_id:032x}" == trace_id
    assert server.attributes is not None and server.attributes["csf.app"] == "web"
    client_span = next(span for span in spans if span.name == "shop.Shop/GetItem")
    assert client_span.parent is not None
    assert client_span.parent.span_id == server.context.span_id
    points = telemetry.points("csf.gateway.requests")
    assert any(
        point.attributes["csf.app"] == "web"
        and point.attributes["http.response.status_code"] == 200
        and point.attributes["rpc.method"] == "GetItem"
        for point in points
    )


async def test_a_caller_cannot_force_sampling(
    deployment: Deployment,
    tmp_path: Path,
    telemetry: Telemetry,  # noqa: F811
) -> None:
    settings = GatewaySettings(
        registry=deployment.zookeeper.url,
        tenant=deployment.tenant,
        snapshot_dir=str(tmp_path),
        sample_ratio=0.0,
    )
    gateway = Gateway(settings, APPS, observability=telemetry.config)
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            while gateway.catalogue is None or "SHOP" not in gateway.catalogue.open_services:
                await _tick()
            trace_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            for _ in range(5):
                headers = _signed(GET_ITEM, b"{}", traceparent=trace_parent)
                assert (await client.post(GET_ITEM, content=b"{}", headers=headers)).is_success
    finally:
        await gateway.close()
    assert [span for span in telemetry.finished() if span.kind.name == "SERVER"] == []


async def test_each_request_is_one_access_log_line_with_its_trace_id_and_no_secrets(
    in_process: tuple[Gateway, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = in_process
    body = b'{"id": "6", "displayName": "private words"}'
    path = "/SHOP/shop.Shop/PutItem"
    headers = _signed(path, body)
    with caplog.at_level(logging.INFO, logger="csf.gateway.access"):
        reply = await client.post(path + "?token=hidden", content=body, headers=headers)
        refused = await client.post(path, content=body)
    assert refused.status_code == 401 and reply.status_code == 401  # the query was not signed
    signed_path = path + "?token=hidden"
    headers = _signed(signed_path, body)
    with caplog.at_level(logging.INFO, logger="csf.gateway.access"):
        reply = await client.post(signed_path, content=body, headers=headers)
    assert reply.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "csf.gateway.access"]
    assert len(lines) == 3
    assert lines[-1].startswith(f"POST {path} 200 ") and "app=web" in lines[-1]
    trace_id = reply.headers.get("x-trace-id") or lines[-1].rpartition("trace_id=")[2]
    assert len(trace_id) == 32 and trace_id != "-"
    for line in lines:
        for secret in ("private words", "hidden", APPS["web"], headers["X-Csf-Signature"]):
            assert secret not in line
