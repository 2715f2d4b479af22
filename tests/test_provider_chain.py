"""The provider guard chain: a named order, user guards added or swapped in by name."""

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import csf
from csf._guards import BUILTIN_PROVIDER_GUARDS, build_guards, resolve_guards
from csf.auth import AuthGuard, Subscribers
from csf.config import StaticURL
from csf.observability.metrics import ServerMetricsGuard
from csf.observability.tracing import ServerTracingGuard
from csf.provider import provider_spec
from csf.registry import StaticRegistry
from csf.resilience.concurrency import ExecutesGuard
from csf.resilience.ratelimit import RateLimitGuard
from csf.rule_set import ServiceRules
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import greeter_server, greeter_variant

STATIC = "static://127.0.0.1:1"
SECRET = "s" * 16


def context(auth: csf.CallerAuth | None = None) -> csf.GuardContext:
    """SayHello's context on a server with tracing, metrics and `auth` on."""
    telemetry = csf.Observability(
        tracer_provider=TracerProvider(), meter_provider=MeterProvider()
    ).resolve("t")
    registry = StaticRegistry(StaticURL(((("127.0.0.1", 1)),)))
    subscribers = Subscribers()
    return csf.GuardContext(
        tenant="T",
        service="XIESR",
        method="/demo.Greeter/SayHello",
        spec=provider_spec(Greeter(lambda: "")),
        rules=ServiceRules(registry, "T", "XIESR"),
        telemetry=telemetry,
        auth=auth,
        subscribers=lambda: subscribers,
    )


def test_the_default_chain_runs_tracing_auth_metrics_executes_then_the_rate_limit() -> None:
    ctx = context(csf.CallerAuth(secrets={"web": SECRET}))
    guards = build_guards(ctx, resolve_guards(csf.DEFAULT_PROVIDER_CHAIN, None))
    assert [type(guard) for guard in guards] == [
        ServerTracingGuard,
        AuthGuard,
        ServerMetricsGuard,
        ExecutesGuard,
        RateLimitGuard,
    ]
    assert set(csf.DEFAULT_PROVIDER_CHAIN) == set(BUILTIN_PROVIDER_GUARDS)


def test_guards_switched_off_are_left_out_of_the_chain() -> None:
    off = csf.Observability(tracing=False, metrics=False).resolve("t")
    bare = dataclasses.replace(context(), telemetry=off)
    guards = build_guards(bare, resolve_guards(csf.DEFAULT_PROVIDER_CHAIN, None))
    assert [type(guard) for guard in guards] == [ExecutesGuard, RateLimitGuard]


@pytest.mark.parametrize(
    ("chain", "guards", "message"),
    [
        (
            ("tracing", "audit"),
            None,
            "chain: unknown guard 'audit'; "
            "known: auth, concurrency, metrics, rate_limit, set, tracing",
        ),
        (("auth", "metrics", "auth"), None, "chain: guard 'auth' appears twice"),
        ("tracing", None, "chain: expected a sequence of guard names"),
        (("tracing",), {"audit": "not callable"}, "guards: expected a mapping of names"),
        (("tracing",), [("audit", print)], "guards: expected a mapping of names"),
    ],
)
def test_a_bad_chain_or_guard_is_named_with_the_known_ones(
    chain: Any, guards: Any, message: str
) -> None:
    with pytest.raises(csf.ConfigError, match=f"^{re.escape(message)}"):
        csf.Server(registry=STATIC, tenant="T", chain=chain, guards=guards)


def test_a_user_guard_named_in_the_chain_is_known() -> None:
    csf.Server(
        registry=STATIC,
        tenant="T",
        chain=(*csf.DEFAULT_PROVIDER_CHAIN, "audit"),
        guards={"audit": lambda ctx: None},
    )


class Audit:
    """A user guard: records each call it sees, and the methods it was built for."""

    def __init__(self) -> None:
        self.built: list[str] = []
        self.calls: list[tuple[str, str]] = []

    def factory(self, ctx: csf.GuardContext) -> csf.Guard | None:
        self.built.append(ctx.method)
        if ctx.method_name == "StreamHellos":
            return None  # a factory may leave a method unguarded

        @contextlib.asynccontextmanager
        async def guard(context: Any) -> AsyncIterator[None]:
            self.calls.append(("enter", ctx.method_name))
            yield
            self.calls.append(("exit", ctx.method_name))

        return guard


async def test_a_user_guard_added_by_name_runs_around_its_methods_handlers() -> None:
    audit = Audit()
    chain = (*csf.DEFAULT_PROVIDER_CHAIN, "audit")
    async with greeter_server(STATIC, "T", chain=chain, guards={"audit": audit.factory}) as server:
        assert sorted(audit.built) == [
            "/demo.Greeter/Chat",
            "/demo.Greeter/CollectHellos",
            "/demo.Greeter/SayHello",
            "/demo.Greeter/StreamHellos",
        ]
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = greeter_pb2_grpc.GreeterStub(channel)
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name="x"), timeout=5)
            streamed = [r async for r in stub.StreamHellos(greeter_pb2.HelloRequest(), timeout=5)]
    assert reply.message == "hi x"
    assert len(streamed) == 3
    assert audit.calls == [("enter", "SayHello"), ("exit", "SayHello")]


async def test_a_user_factory_replaces_the_built_in_guard_of_its_name() -> None:
    limited = greeter_variant(delay=0.3, executes=1)
    request = greeter_pb2.HelloRequest(name="x")

    async def codes(**settings: Any) -> list[str]:
        server = greeter_server(STATIC, "T", limited, **settings)
        async with server, grpc.aio.insecure_channel(server.address) as channel:
            stub = greeter_pb2_grpc.GreeterStub(channel)
            calls = [stub.SayHello(request, timeout=5) for _ in range(2)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        return sorted(
            r.code().name if isinstance(r, grpc.aio.AioRpcError) else "OK" for r in results
        )

    # executes=1: the built-in concurrency guard refuses the second call at once...
    assert await codes() == ["OK", "RESOURCE_EXHAUSTED"]
    # ...and a factory named "concurrency" that returns None takes that limit away.
    assert await codes(guards={"concurrency": lambda ctx: None}) == ["OK", "OK"]
