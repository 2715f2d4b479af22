"""The gateway's answers to failed calls (google/rpc/code.proto's HTTP mapping, no
internals), and the governance behind it: breaker and fallback, per-app rate limits,
deadlines, and traces that continue the caller's."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest

from csf.gateway import Gateway, GatewaySettings, signed_headers
from demo.sets import RULE
from tests.conftest import wait_until
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
        retry_after = "1" if code == "RESOURCE_EXHAUSTED" else None
        assert reply.headers.get("Retry-After") == retry_after, code


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
    async with _serving(gateway) as client:
        yield gateway, client


@contextlib.asynccontextmanager
async def _serving(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a started `gateway` once it serves SHOP; the gateway closed after."""
    await gateway.start()
    transport = httpx.ASGITransport(app=gateway)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            await wait_until(
                lambda: gateway.catalogue is not None and "SHOP" in gateway.catalogue.open_services,
                what="the gateway serving SHOP",
            )
            yield client
    finally:
        await gateway.close()


def _item(item_id: int) -> Any:
    from shop import shop_pb2

    return shop_pb2.Item(id=item_id, display_name="from the fallback")


def _signed(path: str, body: bytes, **headers: str) -> dict[str, str]:
    return {**signed_headers("web", APPS["web"], "POST", path, body), **headers}


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
    body = b'{"id": "8"}'
    answers: dict[str, httpx.Response] = {}

    async def answered_by_fallback() -> bool:
        reply = await embedded_client.post(GET_ITEM, content=body, headers=_signed(GET_ITEM, body))
        answers["embedded"] = reply
        return "fallback" in reply.text

    async def refused() -> bool:
        answers["plain"] = await gateway.request(client, "POST", GET_ITEM, body)
        return answers["plain"].status_code == 503

    await wait_until(answered_by_fallback, what="the embedded gateway's fallback answering")
    await wait_until(refused, what="the plain gateway answering 503")
    from_fallback, plain = answers["embedded"], answers["plain"]
    assert from_fallback.status_code == 200
    assert from_fallback.json()["displayName"] == "from the fallback"
    assert from_fallback.json()["id"] == "8"
    assert plain.json()["code"] == "UNAVAILABLE"
    assert plain.json()["message"] == "the service is unavailable", "no breaker internals"
    calls_while_open = shop.Shop.calls
    for _ in range(3):
        assert (await gateway.request(client, "POST", GET_ITEM, body)).status_code == 503
        await embedded_client.post(GET_ITEM, content=body, headers=_signed(GET_ITEM, body))
    assert shop.Shop.calls == calls_while_open, "an open breaker kept the calls from the provider"


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


async def test_a_caller_cannot_force_sampling_and_its_trace_id_still_travels(
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
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with _serving(gateway) as client:
        for traceparent in (f"00-{trace_id}-b7ad6b7169203331-01", None):
            extra = {"traceparent": traceparent} if traceparent else {}
            for _ in range(3):
                headers = _signed(GET_ITEM, b"{}", **extra)
                assert (await client.post(GET_ITEM, content=b"{}", headers=headers)).is_success
        wrong = b'{"nmae": "x"}'
        headers = _signed(GET_ITEM, wrong, traceparent=f"00-{trace_id}-b7ad6b7169203331-01")
        refused = await client.post(GET_ITEM, content=wrong, headers=headers)
    assert refused.status_code == 400 and refused.json()["trace_id"] == trace_id
    assert telemetry.finished() == [], "sampled at 0: no span, the CSF call's neither"


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


async def test_the_timeout_rule_bounds_a_call_given_a_longer_deadline(
    deployment: Deployment, gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    def push(admin: Any) -> None:
        admin.set_rule("SHOP", "timeout", b'{"schema": 1, "timeout_ms": 300}')

    await deployment.run(push)
    slow = b'{"count": 1, "delayMs": 3000}'

    async def bounded() -> bool:
        started = time.monotonic()
        reply = await gateway.request(
            client, "POST", "/SHOP/shop.Shop/ListItems", slow, headers={"X-Csf-Timeout": "20"}
        )
        return reply.status_code == 504 and time.monotonic() - started < 2.5

    await wait_until(bounded, within=20, what="the rule's 300 ms ending the call")


async def test_csf_s_own_refusals_reach_the_caller_as_a_fixed_text(
    deployment: Deployment, gateway: GatewayProcess, client: httpx.AsyncClient
) -> None:
    """A SET-ized service called without a SET key: the consumer's NoSetKeyError speaks
    of stubs and SETs, for operators; the HTTP caller gets the code and a fixed text."""

    def push(admin: Any) -> None:
        admin.set_rule("SHOP", "set", json.dumps(RULE).encode(), force=True)

    await deployment.run(push)

    async def refused() -> bool:
        reply = await gateway.request(client, "POST", GET_ITEM, b'{"id": "1"}')
        return reply.status_code == 400

    await wait_until(refused, what="the set rule in force at the gateway")
    reply = await gateway.request(client, "POST", GET_ITEM, b'{"id": "1"}')
    assert reply.json()["code"] == "FAILED_PRECONDITION"
    assert reply.json()["message"] == "the service cannot take this call now"
