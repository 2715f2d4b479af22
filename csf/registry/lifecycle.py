"""A gRPC service's lifecycle status, as its descriptor under `services/` holds it.

Operators move a descriptor `registered -> online -> open`, and to `offline` or
`deregistered` (csf-registry's lifecycle commands); consumers may watch the status.
"""

from __future__ import annotations

import json

from csf.registry.paths import service_path

STATUSES = frozenset({"registered", "online", "open", "offline", "deregistered"})


class LifecycleFormatError(ValueError):
    """Descriptor data without a known status; the message says what is wrong."""


def descriptor_path(tenant: str, service: str, grpc_service: str) -> str:
    return f"{service_path(tenant, service)}/services/{grpc_service}"


def parse_status(data: bytes) -> str:
    """The `status` of a descriptor document; LifecycleFormatError when it has none."""
    try:
        document = json.loads(data)
    except ValueError:
        raise LifecycleFormatError("not JSON") from None
    except RecursionError:  # anyone may write the node: nesting deep enough overflows
        raise LifecycleFormatError("JSON nested too deeply") from None
    status = document.get("status") if isinstance(document, dict) else None
    if not isinstance(status, str) or status not in STATUSES:  # a list is unhashable
        raise LifecycleFormatError(f"status {status!r} is not one of {sorted(STATUSES)}")
    return str(status)
