"""gRPC server reflection, opt-in (`Server(reflection=True)`), from grpcio-reflection.

grpcurl and similar tools ask a server which services it has and for their file
descriptors; the answers come from protobuf's default descriptor pool, where the
generated modules of the served servicers put the same descriptors that
`csf-registry export` reads. grpcio-reflection is an extra: imported only when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2

from csf._exceptions import ConfigError

HEALTH_SERVICE: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

Enable = Callable[[Iterable[str], grpc.aio.Server], None]


def reflection_enabler() -> Enable:
    """What adds the reflection service to a server, for the names given and the health
    and reflection services; ConfigError when grpcio-reflection is not installed."""
    try:
        from grpc_reflection.v1alpha import reflection
    except ImportError:
        raise ConfigError(
            "reflection: needs grpcio-reflection; pip install 'csf[reflection]'"
        ) from None

    def enable(services: Iterable[str], server: grpc.aio.Server) -> None:
        names = (*sorted(services), HEALTH_SERVICE, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)

    return enable
