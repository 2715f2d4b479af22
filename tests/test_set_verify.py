"""A provider's SET re-check (`"verify": true`, DESIGN section 8): a real provider in a
SET, called directly over a plain gRPC channel, refuses a key of another SET and keeps
accepting a key the previous rule version gave it while a move is in flight."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf import set_guard
from csf._guards import BUILTIN_PROVIDER_GUARDS, build_guards, resolve_guards
from csf.observability.metrics import ServerMetricsGuard
from csf.set_guard import SetGuard
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_server, pushed, removed, wait_until
from tests.observability.memory import Telemetry
from tests.test_provider_chain import context as guard_context

Request = greeter_pb2.HelloRequest
Stub = greeter_pb2_grpc.GreeterStub
OWN = "hz.a.1"
OTHER = "hz.a.2"
# Buckets are `key % 100` for decimal keys: 7 is in hz.a.1, 57 and 77 in hz.a.2.
OWN_KEY, OTHER_KEY, FAR_KEY = "7", "57", "77"


def rule(ranges: Sequence[tuple[int, int, str]], **fields: Any) -> dict[str, Any]:
    table = [{"from": first, "to": last, "set": name} for first, last, name in ranges]
    return {"schema": 1, "buckets": 100, "ranges": table, "verify": True, **fields}


HALVES = rule([(0, 49, OWN), (50, 99, OTHER)])


@pytest.fixture(autouse=True)
def short_rule_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal waits this long for a newer rule (1 s in production)."""
    monkeypatch.setattr(set_guard, "RULE_LAG", 0.05)


@contextlib.asynccontextmanager
async def provider(
    zookeeper: LocalZooKeeper, tenant: str, **settings: Any
) -> AsyncIterator[tuple[csf.Server, Stub]]:
    """A started Greeter provider and a plain stub straight to it (no CSF consumer)."""
    server = greeter_server(zookeeper.url, tenant, host="127.0.0.1", **settings)
    async with server, grpc.aio.insecure_channel(server.address) as channel:
        yield server, Stub(channel)


def keyed(key: str, entry: str = "csf-set-key") -> tuple[tuple[str, str], ...]:
    return ((entry, key),)


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def answered(stub: Stub, key: str | None, entry: str = "csf-set-key") -> str:
    metadata = keyed(key, entry) if key is not None else None
    reply = await stub.SayHello(Request(name="u"), metadata=metadata, timeout=5)
    return str(reply.message)


async def test_a_key_of_the_providers_set_is_served_one_of_another_set_is_refused(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        await pushed(kazoo, tenant, server.rules("XIESR"), "set", HALVES)
        assert await answered(stub, OWN_KEY) == "hi u"

        error = await refusal(stub.SayHello(Request(name="u"), metadata=keyed(OTHER_KEY)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = error.details() or ""
        assert "bucket 57" in details, details
        assert f"SET {OTHER}" in details and f"SET {OWN}" in details, details


async def test_the_key_is_read_from_the_rules_metadata_entry_without_csf_set_key(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        by_user = rule([(0, 49, OWN), (50, 99, OTHER)], key="x-user-id")
        await pushed(kazoo, tenant, server.rules("XIESR"), "set", by_user)
        assert await answered(stub, OWN_KEY, "x-user-id") == "hi u"

        call = stub.SayHello(Request(name="u"), metadata=keyed(OTHER_KEY, "x-user-id"))
        error = await refusal(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "bucket 57" in (error.details() or "")
        # csf-set-key, the key CSF resolved upstream, wins over the entry.
        both = (("csf-set-key", OWN_KEY), ("x-user-id", OTHER_KEY))
        assert (await stub.SayHello(Request(name="u"), metadata=both)).message == "hi u"


async def test_a_call_with_no_key_is_served(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        await pushed(kazoo, tenant, server.rules("XIESR"), "set", HALVES)
        assert await answered(stub, None) == "hi u"
        # The rule's own entry is not csf-set-key's fallback when the rule names none.
        assert await answered(stub, OTHER_KEY, "x-user-id") == "hi u"


async def test_without_verify_or_without_a_rule_every_key_is_served(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        rules = server.rules("XIESR")
        await pushed(kazoo, tenant, rules, "set", {**HALVES, "verify": False})
        assert await answered(stub, OTHER_KEY) == "hi u"

        await pushed(kazoo, tenant, rules, "set", HALVES)
        assert (await refusal(stub.SayHello(Request(), metadata=keyed(OTHER_KEY)))).code() == (
            grpc.StatusCode.FAILED_PRECONDITION
        )
        await removed(kazoo, tenant, rules, "set")
        assert await answered(stub, OTHER_KEY) == "hi u"


async def test_a_provider_without_a_set_serves_every_key(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant) as (server, stub):
        await pushed(kazoo, tenant, server.rules("XIESR"), "set", HALVES)
        assert await answered(stub, OWN_KEY) == "hi u"
        assert await answered(stub, OTHER_KEY) == "hi u"


async def test_during_a_move_a_key_the_previous_version_gave_this_set_is_still_served(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        rules = server.rules("XIESR")
        await pushed(kazoo, tenant, rules, "set", rule([(0, 59, OWN), (60, 99, OTHER)]))
        assert await answered(stub, OTHER_KEY) == "hi u"

        # Buckets 50..59 move away: a consumer still on the old table sends key 57 here.
        await pushed(kazoo, tenant, rules, "set", rule([(0, 49, OWN), (50, 99, OTHER)]))
        assert await answered(stub, OTHER_KEY) == "hi u"
        far = await refusal(stub.SayHello(Request(), metadata=keyed(FAR_KEY)))
        assert far.code() == grpc.StatusCode.FAILED_PRECONDITION, "in neither version"

        # A second move: the previous version no longer gives bucket 57 to this SET.
        await pushed(kazoo, tenant, rules, "set", rule([(0, 39, OWN), (40, 99, OTHER)]))
        error = await refusal(stub.SayHello(Request(), metadata=keyed(OTHER_KEY)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "bucket 57" in (error.details() or "")
        assert await answered(stub, OWN_KEY) == "hi u"


async def test_the_previous_version_counts_only_for_a_while_after_the_change(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(set_guard, "PREVIOUS_FOR", 0.5)
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        rules = server.rules("XIESR")
        await pushed(kazoo, tenant, rules, "set", rule([(0, 59, OWN), (60, 99, OTHER)]))
        await pushed(kazoo, tenant, rules, "set", rule([(0, 49, OWN), (50, 99, OTHER)]))

        async def refused() -> bool:
            try:
                await stub.SayHello(Request(), metadata=keyed(OTHER_KEY), timeout=5)
            except grpc.aio.AioRpcError as error:
                return error.code() == grpc.StatusCode.FAILED_PRECONDITION
            return False

        await wait_until(refused, 10, "the previous version no longer counting")


async def test_after_the_rule_was_removed_no_old_version_counts_as_previous(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        rules = server.rules("XIESR")
        await pushed(kazoo, tenant, rules, "set", rule([(0, 59, OWN), (60, 99, OTHER)]))
        await removed(kazoo, tenant, rules, "set")
        await pushed(kazoo, tenant, rules, "set", HALVES)
        error = await refusal(stub.SayHello(Request(), metadata=keyed(OTHER_KEY)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("own", "on_empty"),
    [("hz.c.1", "center:hz.c.1"), ("hz.a.*", "area")],
)
async def test_a_provider_serves_the_keys_whose_set_falls_back_to_it(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, own: str, on_empty: str
) -> None:
    async with provider(zookeeper, tenant, set=own) as (server, stub):
        rules = server.rules("XIESR")
        await pushed(kazoo, tenant, rules, "set", {**HALVES, "on_empty": on_empty})
        assert await answered(stub, OWN_KEY) == "hi u"
        assert await answered(stub, OTHER_KEY) == "hi u"

        # Without the fallback the same provider is no SET's, once the previous version
        # (which still falls back to it) is gone too.
        await pushed(kazoo, tenant, rules, "set", HALVES)
        assert await answered(stub, OTHER_KEY) == "hi u"
        await pushed(kazoo, tenant, rules, "set", rule([(0, 39, OWN), (40, 99, OTHER)]))
        error = await refusal(stub.SayHello(Request(), metadata=keyed(OTHER_KEY)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"SET {own}" in (error.details() or "")


async def test_every_kind_of_call_is_checked(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    async def requests() -> AsyncIterator[Any]:
        yield Request(name="a")
        yield Request(name="b")

    async with provider(zookeeper, tenant, set=OWN) as (server, stub):
        await pushed(kazoo, tenant, server.rules("XIESR"), "set", HALVES)
        for key, served in ((OWN_KEY, True), (OTHER_KEY, False)):
            metadata = keyed(key)
            calls: dict[str, Any] = {
                "server stream": stub.StreamHellos(Request(name="s", count=2), metadata=metadata),
                "client stream": stub.CollectHellos(requests(), metadata=metadata),
                "both streams": stub.Chat(requests(), metadata=metadata),
            }
            for kind, call in calls.items():
                try:
                    if kind == "client stream":
                        replies = [await call]
                    else:
                        replies = [reply async for reply in call]
                except grpc.aio.AioRpcError as error:
                    assert not served, f"{kind} with key {key}: {error.details()}"
                    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, kind
                else:
                    assert served, f"{kind} with key {key} was served: {replies}"
                    assert replies, kind


async def test_a_refused_call_is_counted_by_the_providers_metrics(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, telemetry: Telemetry
) -> None:
    async with provider(zookeeper, tenant, set=OWN, observability=telemetry.config) as (
        server,
        stub,
    ):
        await pushed(kazoo, tenant, server.rules("XIESR"), "set", HALVES)
        await refusal(stub.SayHello(Request(), metadata=keyed(OTHER_KEY)))
    refused = [
        point
        for point in telemetry.points("csf.server.calls")
        if point.attributes["rpc.grpc.status_code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    ]
    assert [(p.value, p.attributes["csf.set"]) for p in refused] == [(1, OWN)]


def test_the_set_guard_runs_after_metrics_and_only_on_a_server_in_a_set() -> None:
    chain = resolve_guards(csf.DEFAULT_PROVIDER_CHAIN, None)
    in_set = build_guards(dataclasses.replace(guard_context(), set_name=OWN), chain)
    kinds = [type(guard) for guard in in_set]
    assert kinds.index(SetGuard) == kinds.index(ServerMetricsGuard) + 1
    assert SetGuard not in [type(guard) for guard in build_guards(guard_context(), chain)]
    assert "set" in BUILTIN_PROVIDER_GUARDS


def held(telemetry: Telemetry) -> int:
    """Calls inside the provider's guards now (its metrics guard counts from outside)."""
    return sum(int(point.value) for point in telemetry.points("csf.server.active_calls"))


async def test_a_refused_key_waits_for_the_providers_next_rule_version(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A consumer that read a move before this provider did is not refused for it."""
    monkeypatch.setattr(set_guard, "RULE_LAG", 30.0)
    async with provider(zookeeper, tenant, set=OWN, observability=telemetry.config) as (
        server,
        stub,
    ):
        rules = server.rules("XIESR")
        await pushed(kazoo, tenant, rules, "set", HALVES)
        call = stub.SayHello(Request(name="u"), metadata=keyed(OTHER_KEY), timeout=60)
        await wait_until(lambda: held(telemetry) == 1, 10, "the call held by the SET check")
        await pushed(kazoo, tenant, rules, "set", rule([(0, 59, OWN), (60, 99, OTHER)]))
        assert (await call).message == "hi u"

        # Waiting ends at half the call's time left: the caller hears why, not a timeout.
        error = await refusal(stub.SayHello(Request(), metadata=keyed(FAR_KEY), timeout=1))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
