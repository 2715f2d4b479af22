"""The dispatch layer: governed CSF calls built from a descriptor's message classes.

It uses CSF's public API only: one `GovernedChannel` per service code from
`Consumer.channel`, and per method a multicallable with that method's serializers, built
once per compiled descriptor (a re-imported one gets fresh ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from csf.channel import GovernedChannel
from csf.consumer import Consumer
from csf.gateway.catalogue import Method

Metadata = tuple[tuple[str, str], ...]


class Dispatcher:
    """Calls open methods through the consumer's whole filter chain."""

    def __init__(self, consumer: Consumer, fallback: Mapping[str, Any] | None = None) -> None:
        self._consumer = consumer
        self._fallback = dict(fallback or {})
        self._channels: dict[str, GovernedChannel] = {}
        self._callables: dict[Method, Any] = {}

    def prepare(self, methods: Sequence[Method]) -> None:
        """Build what calls to `methods` need (and forget the methods no longer served),
        so that a request finds it ready."""
        wanted = set(methods)
        self._callables = {m: c for m, c in self._callables.items() if m in wanted}
        served = {method.service for method in methods}
        self._channels = {code: c for code, c in self._channels.items() if code in served}
        for method in methods:
            if method not in self._callables:
                self._callables[method] = self._multicallable(method)

    def _channel(self, service: str) -> GovernedChannel:
        found = self._channels.get(service)
        if found is None:
            fallback = self._fallback.get(service)
            found = self._channels[service] = self._consumer.channel(
                service=service, fallback=fallback
            )
        return found

    def _multicallable(self, method: Method) -> Any:
        channel = self._channel(method.service)
        make = getattr(channel, method.kind)
        return make(
            method.path,
            request_serializer=method.input.SerializeToString,
            response_deserializer=method.output.FromString,
        )

    def _callable(self, method: Method) -> Any:
        # A request may still hold a method of the catalogue before the last `prepare`.
        found = self._callables.get(method)
        if found is None:
            found = self._callables[method] = self._multicallable(method)
        return found

    async def unary(self, method: Method, request: Any, seconds: float, metadata: Metadata) -> Any:
        return await self._callable(method)(request, timeout=seconds, metadata=metadata)

    async def collect(
        self, method: Method, requests: Sequence[Any], seconds: float, metadata: Metadata
    ) -> Any:
        return await self._callable(method)(iter(requests), timeout=seconds, metadata=metadata)

    def stream(self, method: Method, request: Any, seconds: float, metadata: Metadata) -> Any:
        """The call object of a server-streaming method: read it, cancel it when done."""
        return self._callable(method)(request, timeout=seconds, metadata=metadata)
