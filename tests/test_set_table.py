"""Which providers a call may reach, over the mixed cases of SET routing (DESIGN 8).

One ZooKeeper, four providers: one in no SET, one in hz.a.1, one in hz.a.2 and one in
the area's shared group hz.a.*. Service codes stand for the cases: served by all four
(the SET present), by all but hz.a.1 and hz.a.* (the SET empty), by all but hz.a.1
(only its `*` group), each with and without a `set` rule, under on_empty "fail" and
"area". Callers live in no SET or in hz.a.1, and call with or without a key.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from kazoo.client import KazooClient

import csf
from csf.set_rule import SetRule
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_variant, push_rule, wait_until

SETS = (None, "hz.a.1", "hz.a.2", "hz.a.*")
PROVIDERS_OF = {
    "present": SETS,
    "empty": (None, "hz.a.2"),
    "area_only": (None, "hz.a.2", "hz.a.*"),
}
KEY_IN_SET_1 = "7"  # a decimal key: bucket 7 of 1000, in hz.a.1's range
CALLS = 40


def set_rule(on_empty: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "key": "x-user-id",
        "buckets": 1000,
        "ranges": [
            {"from": 0, "to": 499, "set": "hz.a.1"},
            {"from": 500, "to": 999, "set": "hz.a.2"},
        ],
        "on_empty": on_empty,
    }


def service_code(providers: str, rule: str | None) -> str:
    return f"{providers.upper().replace('_', '')}{(rule or 'PLAIN').upper()}"


CASES = [(p, r) for p in PROVIDERS_OF for r in (None, "fail", "area")]


@contextlib.asynccontextmanager
async def deployment(registry: str, tenant: str) -> AsyncIterator[dict[str | None, str]]:
    """Each SET's provider address (None: the provider in no SET), serving its cases."""
    servers = []
    for set_name in SETS:
        server = csf.Server(
            registry, tenant, deregister_wait=0, grace=1.0, handle_signals=False, set=set_name
        )
        for providers, rule in CASES:
            if set_name in PROVIDERS_OF[providers]:
                servicer = greeter_variant(service=service_code(providers, rule))
                server.add(servicer(lambda s=server: s.address))
        servers.append(server)
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            await stack.enter_async_context(server)
        yield {set_name: s.address for set_name, s in zip(SETS, servers, strict=True)}


def expected(
    providers: str, rule: str | None, caller_set: str | None, keyed: bool
) -> set[str | None] | grpc.StatusCode:
    """The SETs whose providers may answer, or the status the calls fail with."""
    present = PROVIDERS_OF[providers]
    if rule is None:
        return set(present)
    if not keyed and caller_set is None:
        return grpc.StatusCode.FAILED_PRECONDITION
    if "hz.a.1" in present:
        return {"hz.a.1"}
    if rule == "area" and "hz.a.*" in present:
        return {"hz.a.*"}
    return grpc.StatusCode.UNAVAILABLE


async def outcome(stub: Any, keyed: bool) -> set[str] | tuple[grpc.StatusCode, str]:
    """The providers that answered CALLS calls, or the one status and details they failed with."""
    metadata = (("x-user-id", KEY_IN_SET_1),) if keyed else None
    outcomes = await asyncio.gather(
        *(
            stub.SayHello(greeter_pb2.HelloRequest(name=str(i)), metadata=metadata)
            for i in range(CALLS)
        ),
        return_exceptions=True,
    )
    errors = {
        (o.code(), o.details() or "") for o in outcomes if isinstance(o, grpc.aio.AioRpcError)
    }
    if errors:
        assert len(errors) == 1 and len(outcomes) == CALLS, errors  # all failed alike
        return errors.pop()
    return {reply.served_by for reply in outcomes}


async def test_calls_reach_the_providers_their_case_allows(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    for providers, rule in CASES:
        if rule is not None:
            service = service_code(providers, rule)
            await asyncio.to_thread(push_rule, kazoo, tenant, "set", set_rule(rule), service)
    wrong = []
    async with deployment(zookeeper.url, tenant) as address_of:
        for caller_set in (None, "hz.a.1"):
            async with csf.Consumer(
                zookeeper.url, tenant, "table", snapshot_dir=tmp_path, set=caller_set
            ) as consumer:
                for providers, rule in CASES:
                    service = service_code(providers, rule)
                    stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=service, lb="random")
                    await consumer.rules(service).settle(10)
                    assert (consumer.rules(service).get(SetRule) is None) == (rule is None)
                    directory = consumer.directory(service)
                    count = len(PROVIDERS_OF[providers])
                    await wait_until(lambda d=directory, n=count: len(d.endpoints) == n, 10)
                    for keyed in (False, True):
                        want = expected(providers, rule, caller_set, keyed)
                        got = await outcome(stub, keyed)
                        case = (providers, rule, caller_set, "key" if keyed else "no key")
                        if isinstance(want, grpc.StatusCode):
                            where = "bucket 7" if keyed else "no key"
                            named = want is not grpc.StatusCode.UNAVAILABLE or (
                                "SET hz.a.1" in got[1] and where in got[1]
                            )
                            if not isinstance(got, tuple) or got[0] is not want or not named:
                                wrong.append((case, want, got))
                        elif got != {address_of[set_name] for set_name in want}:
                            wrong.append((case, want, got))
    assert not wrong, "\n".join(map(str, wrong))
