"""Traces, metrics and logs of real calls, read back through the SDK's in-memory parts."""

import asyncio
import logging
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import csf
from csf.observability import tracing
from csf.testing.zookeeper import LocalZooKeeper, free_port
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, push_rule, wait_until
from tests.observability.memory import Telemetry, server

Request = greeter_pb2.HelloRequest


def provider_class(service: str, say_hello: Any) -> type[Greeter]:
    cls = type(f"Traced{service}", (Greeter,), {"SayHello": say_hello})
    return csf.provider(service=service, warmup=0)(cls)


async def test_a_three_hop_chain_is_one_trace_with_the_right_links(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    consumer = consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config)

    async def forward(self: Greeter, request: Any, context: Any) -> Any:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPB")
        return await stub.SayHello(request)

    async def answer(self: Greeter, request: Any, context: Any) -> Any:
        return greeter_pb2.HelloReply(message="from B")

    a = server(zookeeper, tenant, provider_class("HOPA", forward)(lambda: ""), telemetry)
    b = server(zookeeper, tenant, provider_class("HOPB", answer)(lambda: ""), telemetry)
    async with consumer, a, b:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPA", lb="round_robin")
        assert (await stub.SayHello(Request(name="x"))).message == "from B"

    spans = telemetry.finished()
    assert len({span.context.trace_id for span in spans}) == 1
    by_id = {span.context.span_id: span for span in spans}

    def parent(span: ReadableSpan) -> ReadableSpan | None:
        return by_id.get(span.parent.span_id) if span.parent is not None else None

    servers = sorted((s for s in spans if s.kind is SpanKind.SERVER),
                     key=lambda s: s.attributes["csf.service"])  # fmt: skip
    assert [s.attributes["csf.service"] for s in servers] == ["HOPA", "HOPB"]
    assert len(spans) == 4, "a call that needed one attempt has one CLIENT span"
    for hop, server_span in zip((a, b), servers, strict=True):
        logical = parent(server_span)  # it carries its first attempt to the provider
        assert logical is not None and logical.kind is SpanKind.CLIENT
        assert logical.attributes["server.address"] == "127.0.0.1"
        assert logical.attributes["server.port"] == hop.port
        assert logical.attributes["csf.attempt"] == 1
        assert logical.attributes["csf.service"] == server_span.attributes["csf.service"]
        assert logical.attributes["csf.provider"] == hop.address
        for span in (server_span, logical):
            assert span.name == "demo.Greeter/SayHello"
            assert span.attributes["rpc.system"] == "grpc"
            assert span.attributes["rpc.service"] == "demo.Greeter"
            assert span.attributes["rpc.method"] == "SayHello"
            assert span.attributes["rpc.grpc.status_code"] == 0
        assert logical.attributes["csf.tenant"] == tenant
        assert logical.attributes["csf.cluster"] == "defaultCluster"
        assert logical.attributes["csf.lb"] == "round_robin"
        assert logical.attributes["csf.breaker.state"] == "closed"
        assert logical.attributes["csf.fallback"] is False
    top = parent(servers[0])
    assert top is not None and parent(top) is None, "the first call is the root"
    second_hop_logical = parent(servers[1])
    assert second_hop_logical is not None and parent(second_hop_logical) is servers[0]


async def test_a_retried_call_shows_its_retry_as_a_child_span_and_its_first_attempt_on_its_own(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    calls = 0

    async def flaky(self: Greeter, request: Any, context: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "first one fails")
        return greeter_pb2.HelloReply(message="second time lucky")

    provider = server(zookeeper, tenant, provider_class("XIESR", flaky)(lambda: ""), telemetry)
    async with (
        provider,
        consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR",
                             methods={"SayHello": csf.MethodConfig(idempotent=True)})  # fmt: skip
        assert (await stub.SayHello(Request())).message == "second time lucky"

    spans = telemetry.finished()
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    (logical,) = [s for s in clients if s.parent is None]
    assert logical.attributes["csf.attempt"] == 2
    assert logical.attributes["rpc.grpc.status_code"] == 0
    (retry,) = [s for s in clients if s.parent is not None]
    assert retry.parent.span_id == logical.context.span_id  # type: ignore[union-attr]
    assert retry.attributes["csf.attempt"] == 1
    assert retry.attributes["server.port"] == provider.port
    assert retry.status.status_code is StatusCode.UNSET
    # The first attempt is the logical span itself; its failure is an event of it.
    (failed,) = logical.events
    assert failed.name == tracing.ATTEMPT_FAILED
    assert failed.attributes is not None
    assert failed.attributes["csf.attempt"] == 0
    assert failed.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert failed.attributes["csf.provider"] == provider.address
    served = sorted(
        (s for s in spans if s.kind is SpanKind.SERVER), key=lambda s: s.start_time or 0
    )
    assert [s.parent.span_id for s in served] == [  # type: ignore[union-attr]
        logical.context.span_id,
        retry.context.span_id,
    ]
    assert served[0].status.status_code is StatusCode.ERROR


async def test_a_fallback_answer_is_on_the_span_and_in_the_metrics(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    async def fallback(request: Any, error: BaseException) -> Any:
        return greeter_pb2.HelloReply(message="fallback")

    provider = server(zookeeper, tenant, Greeter(lambda: ""), telemetry)
    async with (
        provider,
        consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR",
                             fallback={"SayHello": fallback})  # fmt: skip
        await asyncio.to_thread(push_rule, kazoo, tenant, "breaker", {"schema": 1, "force": "open"})
        await wait_until(lambda: consumer.rules("XIESR").current["breaker"] is not None, 10)
        assert (await stub.SayHello(Request())).message == "fallback"
        gauges = telemetry.points("csf.client.breaker.state")  # read while the consumer runs
        states = {point.attributes["rpc.method"]: point.value for point in gauges}
        assert states == {"SayHello": 2, "StreamHellos": 2, "CollectHellos": 2, "Chat": 2}
    assert telemetry.points("csf.client.breaker.state") == [], "a closed consumer reports none"

    (span,) = [s for s in telemetry.finished() if s.kind is SpanKind.CLIENT]
    assert span.attributes["csf.fallback"] is True
    assert span.attributes["csf.rejected_by"] == "breaker"
    assert span.attributes["csf.breaker.state"] == "open"
    assert sum(p.value for p in telemetry.points("csf.client.fallbacks")) == 1
    rejected = telemetry.points("csf.client.rejected")
    assert [(p.attributes["csf.rejected_by"], p.value) for p in rejected] == [("breaker", 1)]


async def test_metrics_match_the_calls_made(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    async def picky(self: Greeter, request: Any, context: Any) -> Any:
        if request.name == "nobody":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such person")
        return greeter_pb2.HelloReply(message="hi")

    provider = server(zookeeper, tenant, provider_class("XIESR", picky)(lambda: ""), telemetry)
    async with (
        provider,
        consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        for _ in range(7):
            await stub.SayHello(Request(name="ann"))
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.SayHello(Request(name="nobody"))
        for side in ("client", "server"):
            by_code = {p.attributes["rpc.grpc.status_code"]: p.value
                       for p in telemetry.points(f"csf.{side}.calls")}  # fmt: skip
            assert by_code == {0: 7, grpc.StatusCode.NOT_FOUND.value[0]: 3}, side
            durations = telemetry.points(f"csf.{side}.duration")
            assert sum(p.count for p in durations) == 10
            assert all(p.sum > 0 for p in durations)
            assert [p.value for p in telemetry.points(f"csf.{side}.active_calls")] == [0]
        (providers,) = telemetry.points("csf.client.providers")
        assert providers.value == 1 and providers.attributes["csf.service"] == "XIESR"


async def test_a_log_line_inside_a_handler_carries_the_incoming_trace_id(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app")

    async def chatty(self: Greeter, request: Any, context: Any) -> Any:
        logging.getLogger("app").info("handling %s", request.name)
        return greeter_pb2.HelloReply(message="hi")

    provider = server(zookeeper, tenant, provider_class("XIESR", chatty)(lambda: ""), telemetry)
    async with (
        provider,
        consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        await stub.SayHello(Request(name="ann"))
    (record,) = [r for r in caplog.records if r.getMessage() == "handling ann"]
    (root,) = [s for s in telemetry.finished() if s.parent is None]
    assert record.trace_id == format(root.context.trace_id, "032x")  # type: ignore[attr-defined]
    (server_span,) = [s for s in telemetry.finished() if s.kind is SpanKind.SERVER]
    assert record.span_id == format(server_span.context.span_id, "016x")  # type: ignore[attr-defined]


async def test_the_prometheus_endpoint_serves_csf_metrics(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    port = free_port()
    observability = csf.Observability(prometheus_port=port, tracing=False)
    provider = csf.Server(registry=zookeeper.url, tenant=tenant, deregister_wait=0,
                          handle_signals=False, observability=observability)  # fmt: skip
    provider.add(Greeter(lambda: ""))
    async with (
        provider,
        consumer_for(zookeeper.url, tenant, tmp_path, "web", observability) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        await stub.SayHello(Request(name="ann"))

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                return str(reply.read().decode())

        text = await asyncio.to_thread(scrape)
        (instance,) = consumer.directory("XIESR").endpoints.values()
    assert "csf_client_calls" in text and "csf_server_calls" in text
    assert 'rpc_method="SayHello"' in text
    assert instance.instance.metrics_port == port, "announced, for the console to scrape"


async def test_the_retries_metric_counts_every_retry_made(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    failed = 0

    async def unavailable(self: Greeter, request: Any, context: Any) -> Any:
        nonlocal failed
        failed += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "always down")

    async def healthy(self: Greeter, request: Any, context: Any) -> Any:
        return greeter_pb2.HelloReply(message="hi")

    failing = csf.Server(registry=zookeeper.url, tenant=tenant, deregister_wait=0,
                         handle_signals=False)  # fmt: skip
    failing.add(provider_class("XIESR", unavailable)(lambda: ""))
    working = csf.Server(registry=zookeeper.url, tenant=tenant, deregister_wait=0,
                         handle_signals=False)  # fmt: skip
    working.add(provider_class("XIESR", healthy)(lambda: ""))
    consumer = consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config)
    async with failing, working, consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", lb="round_robin",
                             retries=2, timeout=5,
                             methods={"SayHello": csf.MethodConfig(idempotent=True)})  # fmt: skip
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers in the view")
        for _ in range(20):
            assert (await stub.SayHello(Request(name="x"))).message == "hi"
    # Every call succeeded, so each failed attempt was followed by exactly one retry.
    assert failed > 0
    assert sum(p.value for p in telemetry.points("csf.client.retries")) == failed
    by_code = {p.attributes["rpc.grpc.status_code"]: p.value
               for p in telemetry.points("csf.client.calls")}  # fmt: skip
    assert by_code == {0: 20}
