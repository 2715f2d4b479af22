"""One provider as a consumer holds it: its instance data and its own grpc.aio channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from csf.registry.instance import Instance

# Keepalive finds a dead or frozen peer in seconds; without ping_timeout a frozen
# provider can hang a call for about a minute. CSF retries itself, so gRPC must not.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 3_000),
    ("grpc.http2.ping_timeout_ms", 3_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 0),
)
HEALTH_PROBE_TIMEOUT = 1.0

Serializer = Callable[[Any], bytes] | None
Deserializer = Callable[[bytes], Any] | None


class Endpoint:
    """A provider with live counters; balancers read `active`, tests read the totals."""

    __slots__ = ("_callables", "active", "address", "calls", "channel", "failures", "instance")

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.address = instance.address
        self.channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self.active = 0
        self.calls = 0
        self.failures = 0
        self._callables: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f"Endpoint({self.address}, active={self.active})"

    def callable(
        self,
        kind: str,
        method: str,
        request_serializer: Serializer,
        response_deserializer: Deserializer,
    ) -> Any:
        """The channel's multicallable of `kind` ('unary_unary', ...) for `method`, cached."""
        key = (kind, method)
        found = self._callables.get(key)
        if found is None:
            factory = getattr(self.channel, kind)
            found = factory(
                method, request_serializer, response_deserializer, _registered_method=True
            )
            self._callables[key] = found
        return found

    def record(self, code: grpc.StatusCode) -> None:
        """Count the outcome of a finished call."""
        self.calls += 1
        if code is not grpc.StatusCode.OK:
            self.failures += 1

    async def is_serving(self) -> bool:
        """Ask the provider's health service; anything but SERVING is a no."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_PROBE_TIMEOUT)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self, grace: float | None = None) -> None:
        await self.channel.close(grace)
