"""Whether a gRPC service takes calls, from the lifecycle status of its descriptor.

`offline` and `deregistered` mean no new calls (as Dubbo's and Nacos' offline do): a
consumer refuses them with NoProviderError saying so, and calls in flight finish.
Every other status, or no descriptor at all, lets calls through. Providers stay
registered while their service is offline, so `csf-registry online` restores calls at
once.
"""

from __future__ import annotations

import logging

from csf.registry import Registry

logger = logging.getLogger("csf.lifecycle")

REFUSING = frozenset({"offline", "deregistered"})


class ServiceLifecycle:
    """The live lifecycle status of one gRPC service of a service code."""

    def __init__(self, registry: Registry, tenant: str, service: str, grpc_service: str) -> None:
        self.where = f"{tenant}/{service} {grpc_service}"
        self.status: str | None = None
        self.serving = True
        self._subscription = registry.subscribe_lifecycle(
            tenant, service, grpc_service, self._update
        )

    @property
    def refusal(self) -> str:
        return f"{self.where} is {self.status}: it takes no calls until it is online again"

    def _update(self, status: str | None) -> None:
        if status != self.status:
            logger.info("%s: lifecycle now %s", self.where, status)
        self.status = status
        self.serving = status not in REFUSING

    async def close(self) -> None:
        await self._subscription.cancel()
