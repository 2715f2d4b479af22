"""SETs of in-process Greeter providers on a real ZooKeeper, for the SET live tests and
the SET benchmark: who answered a call tells which SET it landed in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

import csf
from demo import greeter_pb2
from demo.providers import Greeter
from demo.sets import KEY, SETS


@dataclass
class Deployment:
    """Running providers, and the SET of each one's address."""

    servers: list[csf.Server] = field(default_factory=list)
    set_of: dict[str, str] = field(default_factory=dict)

    def addresses(self, set_name: str) -> set[str]:
        return {address for address, s in self.set_of.items() if s == set_name}

    async def stop(self, set_name: str) -> None:
        """Stop (gracefully) every provider of `set_name`."""
        victims = [s for s in self.servers if s.set_name == set_name]
        await asyncio.gather(*(server.stop() for server in victims))


@contextlib.asynccontextmanager
async def deployed(
    registry: str,
    tenant: str,
    sets: Iterable[str] = SETS,
    per_set: int = 2,
    servicers: Sequence[type[Greeter]] = (Greeter,),
) -> AsyncIterator[Deployment]:
    """`per_set` in-process providers of each SET, each serving every one of `servicers`."""
    deployment = Deployment()
    for set_name in sets:
        for _ in range(per_set):
            server = csf.Server(
                registry, tenant, deregister_wait=0, grace=2.0, handle_signals=False, set=set_name
            )
            for servicer in servicers:
                server.add(servicer(lambda s=server: s.address))
            deployment.servers.append(server)
    try:
        await asyncio.gather(*(server.start() for server in deployment.servers))
        deployment.set_of = {s.address: str(s.set_name) for s in deployment.servers}
        yield deployment
    finally:
        await asyncio.gather(*(server.stop() for server in deployment.servers))


Outcome = str | grpc.aio.AioRpcError
"""Who served a call (host:port), or how it failed."""


async def say_hello(stub: Any, key: str, *, metadata: bool = True) -> Outcome:
    """One SayHello for `key` (in metadata KEY, and as the request's name)."""
    given = ((KEY, key),) if metadata else None
    try:
        reply = await stub.SayHello(greeter_pb2.HelloRequest(name=key), metadata=given)
    except grpc.aio.AioRpcError as exc:
        return exc
    return str(reply.served_by)


async def call_all(
    stub: Any, keys: Sequence[str], *, metadata: bool = True, in_flight: int = 100
) -> list[Outcome]:
    """One SayHello per key, at most `in_flight` at a time; outcomes in key order."""
    outcomes: list[Outcome] = []
    for start in range(0, len(keys), in_flight):
        chunk = keys[start : start + in_flight]
        outcomes.extend(
            await asyncio.gather(*(say_hello(stub, k, metadata=metadata) for k in chunk))
        )
    return outcomes
