"""One provider as a consumer holds it: its instance data and its own grpc.aio channel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from csf.registry.instance import Instance
from csf.resilience.classify import is_failure
from csf.resilience.latency import PeakEwma
from csf.resilience.outlier import OutlierDetector
from csf.tls import TLSConfig

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
# gRPC ends a call at its deadline on its own; a removed provider's channel is closed
# this long after the last deadline of its calls, so that closing never cuts one short.
RETIRE_MARGIN = 1.0

Serializer = Callable[[Any], bytes] | None
Deserializer = Callable[[bytes], Any] | None


ActiveWatcher = Callable[["Endpoint", int], None]
"""Told (endpoint, change) whenever the endpoint's in-flight count moves by +1 or -1."""


DoneFunc = Callable[[grpc.StatusCode], None]
"""Told the status one call (or stream) ended with."""


class Endpoint:
    """A provider as this consumer holds it, with the live figures balancers read.

    `weight` is the effective weight (rule overrides and warm-up applied) that the
    directory sets before it builds pickers; `active` counts calls in flight; `ewma`
    is the peak-EWMA latency in seconds.
    """

    __slots__ = (
        "_callables",
        "_idle",
        "active",
        "address",
        "calls",
        "channel",
        "failures",
        "instance",
        "latency",
        "latest_deadline",
        "outlier",
        "watchers",
        "weight",
    )

    def __init__(self, instance: Instance, tls: TLSConfig | None = None) -> None:
        self.instance = instance
        self.address = instance.address
        self.weight = instance.weight
        if tls is None:
            self.channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        else:
            options = CHANNEL_OPTIONS + tls.channel_options()
            credentials = tls.channel_credentials()
            self.channel = grpc.aio.secure_channel(self.address, credentials, options=options)
        self.active = 0
        self.calls = 0
        self.failures = 0
        self.latency = PeakEwma()
        self.latest_deadline = 0.0
        """The latest deadline of the calls begun here (time.monotonic())."""
        self.outlier = OutlierDetector()
        self.watchers: list[ActiveWatcher] = []
        self._idle: asyncio.Event | None = None
        self._callables: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f"Endpoint({self.address}, weight={self.weight}, active={self.active})"

    @property
    def ewma(self) -> float:
        return self.latency.value

    @property
    def usable(self) -> bool:
        """False while ejected as an outlier or unable to connect: balancers prefer others."""
        if self.outlier.ejected():
            return False
        state = self.channel.get_state(False)
        return state is not grpc.ChannelConnectivity.TRANSIENT_FAILURE

    def begin(self, deadline: float, *, timed: bool = True) -> DoneFunc:
        """A call (ending by `deadline`) starts here; call what this returns when it ends.

        `timed=False` for streams: how long a stream stays open says nothing of latency.
        """
        self.active += 1
        self.latest_deadline = max(self.latest_deadline, deadline)
        for watcher in self.watchers:
            watcher(self, 1)
        started = time.monotonic()
        finished = False

        def done(code: grpc.StatusCode) -> None:
            nonlocal finished
            if not finished:
                finished = True
                self._end(started if timed else None, code)

        return done

    def _end(self, started: float | None, code: grpc.StatusCode) -> None:
        self.active -= 1
        for watcher in self.watchers:
            watcher(self, -1)
        self.calls += 1
        if code is not grpc.StatusCode.OK:
            self.failures += 1
        self.outlier.record(is_failure(code))
        if started is not None:
            now = time.monotonic()
            self.latency.observe(now - started, now)
        if self.active == 0 and self._idle is not None:
            self._idle.set()

    async def retire(self) -> None:
        """Close the channel once the calls in flight on it are over (or past their
        deadlines): a provider that left the registry still finishes what it was given."""
        try:
            if self.active:
                self._idle = asyncio.Event()
                wait = self.latest_deadline + RETIRE_MARGIN - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._idle.wait(), wait)
        finally:
            await self.channel.close(None)

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
