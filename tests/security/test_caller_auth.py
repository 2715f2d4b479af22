"""Caller authentication: app name and HMAC token, checked before the handler runs, and
the subscription list from the registry; tokens never reach logs or spans."""

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from kazoo.client import KazooClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import csf
from csf.auth import CallerToken
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_server, wait_until
from tests.security.servicers import CountingGreeter

ORDER_SECRET = "order-web-secret-0123456789"
REPORT_SECRET = "report-job-secret-0123456789"
AUTH = csf.CallerAuth(secrets={"order-web": ORDER_SECRET, "report-job": REPORT_SECRET})


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, csf.Observability]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, csf.Observability(tracer_provider=provider, metrics=False)
    provider.shutdown()


async def call_as(
    zookeeper: LocalZooKeeper,
    tenant: str,
    work: Path,
    app: str,
    secret: str | None,
    observability: csf.Observability,
) -> grpc.StatusCode:
    consumer = csf.Consumer(
        registry=zookeeper.url, tenant=tenant, app=app, snapshot_dir=work / app,
        app_secret=secret, observability=observability,
    )  # fmt: skip
    async with consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        try:
            await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_missing_wrong_unknown_and_unsubscribed_callers_never_reach_the_handler(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    spans: tuple[InMemorySpanExporter, csf.Observability],
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter, observability = spans
    caplog.set_level(logging.DEBUG)
    CountingGreeter.handled = 0
    subscription = f"/busidomain/csf/{tenant}/XIESR/subscriptions/order-web"
    server = greeter_server(
        zookeeper.url, tenant, CountingGreeter, auth=AUTH, observability=observability
    )
    async with server:

        async def status(app: str, secret: str | None) -> grpc.StatusCode:
            return await call_as(zookeeper, tenant, tmp_path, app, secret, observability)

        U, P = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED
        assert await status("order-web", None) == U  # no token at all
        assert await status("order-web", REPORT_SECRET) == U  # another app's secret
        assert await status("stranger", "stranger-secret-0123456789") == U
        assert await status("report-job", REPORT_SECRET) == P  # not subscribed
        assert await status("order-web", ORDER_SECRET) == P  # not subscribed yet
        assert CountingGreeter.handled == 0

        await asyncio.to_thread(kazoo.create, subscription, b"", makepath=True)
        await wait_until(
            lambda: _served(zookeeper, tenant, tmp_path, observability),
            10,
            "the subscription to take effect",
        )
        assert CountingGreeter.handled >= 1
        assert await status("report-job", REPORT_SECRET) == P

        await asyncio.to_thread(kazoo.delete, subscription)
        await wait_until(
            lambda: _denied(zookeeper, tenant, tmp_path, observability), 10, "unsubscription"
        )

    # The tokens sent, and the secrets, appear in no log record and no span.
    secrets = [ORDER_SECRET, REPORT_SECRET, "stranger-secret-0123456789"]
    tokens = [
        CallerToken(app, secret, tenant, "XIESR").metadata()[1][1].split(".")[1]
        for app, secret in [("order-web", ORDER_SECRET), ("report-job", REPORT_SECRET)]
    ]
    finished = exporter.get_finished_spans()
    assert finished
    recorded = caplog.text + "".join(
        f"{span.attributes} {span.events} {span.status.description}" for span in finished
    )
    for secret in secrets + tokens:
        assert secret not in recorded


async def _served(
    zookeeper: LocalZooKeeper, tenant: str, work: Path, observability: csf.Observability
) -> bool:
    code = await call_as(zookeeper, tenant, work, "order-web", ORDER_SECRET, observability)
    return code == grpc.StatusCode.OK


async def _denied(
    zookeeper: LocalZooKeeper, tenant: str, work: Path, observability: csf.Observability
) -> bool:
    code = await call_as(zookeeper, tenant, work, "order-web", ORDER_SECRET, observability)
    return code == grpc.StatusCode.PERMISSION_DENIED


def test_bad_auth_settings_are_named() -> None:
    with pytest.raises(csf.ConfigError, match=r"auth\.secrets\['web'\]: expected a string of 16"):
        csf.CallerAuth(secrets={"web": "short"})
    with pytest.raises(csf.ConfigError, match=r"auth\.secrets: expected a non-empty"):
        csf.CallerAuth(secrets={})
    with pytest.raises(csf.ConfigError, match="needs a zk:// registry"):
        csf.Server(registry="static://127.0.0.1:1", tenant="T", auth=AUTH)
    with pytest.raises(csf.ConfigError, match="app_secret: expected a string of 16"):
        csf.Consumer(registry="static://127.0.0.1:1", tenant="T", app="a", app_secret="short")
